"""``hoprag reindex``: check a knowledge base and rebuild its manifest and BM25 index from Chroma."""

from __future__ import annotations

import json
from typing import Optional

import typer

from rag.commands.common import EXIT_ERROR, EXIT_OK, DataOpt, JsonOpt, KbOpt, app, load_settings, run


@app.command()
def reindex(
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    check: bool = typer.Option(False, "--check", help="Only report problems; change nothing."),
    as_json: bool = JsonOpt,
) -> None:
    """Repair a knowledge base: finish interrupted writes, rebuild the manifest and BM25 index from Chroma."""

    def body() -> int:
        from rag.consistency import check_consistency, repair
        from rag.store import Store
        from rag.store.layout import Layout
        from rag.store.manifest import set_aside_if_unreadable

        settings = load_settings(kb, data_dir)
        aside = None if check else set_aside_if_unreadable(Layout(settings.index_dir, settings.kb).manifest)
        store = Store.from_settings(settings)
        try:
            report = {"problems": check_consistency(store)} if check else repair(store)
        finally:
            store.close()
        report["manifest_set_aside"] = str(aside) if aside else None
        if as_json:
            typer.echo(json.dumps(report))
        else:
            if aside:
                typer.echo(f"unreadable manifest moved to {aside}")
            for key in ("recovered", "restored", "dropped"):
                if report.get(key):
                    typer.echo(f"{key}: {', '.join(report[key])}")
            if report.get("bm25_chunks") is not None:
                typer.echo(f"BM25 index rebuilt: {report['bm25_chunks']} chunks")
            for problem in report["problems"]:
                typer.echo(f"problem: {problem}")
            if not report["problems"]:
                typer.echo(f"knowledge base {settings.kb!r} is consistent")
        return EXIT_ERROR if report["problems"] else EXIT_OK

    run(body)
