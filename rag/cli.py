"""The ``hoprag`` command line (typer).

Exit codes: 0 success, 1 error, 2 usage error, 3 partial success (some inputs failed).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from rag.config import Settings
from rag.errors import HopragError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="hoprag: chat with your documents, offline.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval, reranking and answers on a dataset.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

KbOpt = typer.Option(None, "--kb", help="Knowledge base name (default: settings kb).")
DataOpt = typer.Option(None, "--data-dir", help="Data directory (default: settings data_dir).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object.")


def _settings(kb: str | None, data_dir: str | None, **extra: Any) -> Settings:
    return Settings.load(kb=kb, data_dir=data_dir, **extra)


def _run(fn: Callable[[], int | None]) -> None:
    """Run a command body; a HopragError becomes one line on stderr and exit code 1."""
    try:
        code = fn() or EXIT_OK
    except HopragError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    raise typer.Exit(code)


def _open(settings: Settings):
    from rag.pipeline import RAG

    return RAG(settings)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Add documents to a knowledge base (unchanged files are skipped)."""

    def body() -> int:
        from tqdm import tqdm

        with _open(_settings(kb, data_dir)) as rag:
            bars: dict[str, tqdm] = {}

            def progress(source: str, stage: str, frac: float) -> None:
                if as_json:
                    return
                bar = bars.get(source)
                if bar is None:
                    bar = bars[source] = tqdm(total=100, desc=Path(source).name[:30], unit="%", leave=False)
                bar.set_postfix_str(stage)
                bar.update(int(frac * 100) - bar.n)
                if stage in ("done", "failed"):
                    bar.close()

            report = rag.ingest(paths, progress=progress)
        if as_json:
            typer.echo(json.dumps(report.to_dict()))
        else:
            for f in report.files:
                detail = f.reason if f.status == "failed" else f"{f.pages} pages, {f.chunks} chunks"
                typer.echo(f"{f.status:9} {Path(f.source).name}: {detail}")
        if not report.files:
            return EXIT_ERROR
        if report.failed:
            return EXIT_PARTIAL if report.partial else EXIT_ERROR
        return EXIT_OK

    _run(body)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Passages given to the LLM."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Retrieval strategy."),
    as_json: bool = JsonOpt,
) -> None:
    """Answer a question with cited passages."""

    def body() -> int:
        from rag.types import Answer

        with _open(_settings(kb, data_dir, top_k=top_k, strategy=strategy)) as rag:
            answer = None
            for item in rag.stream(question):
                if isinstance(item, Answer):
                    answer = item
                elif not as_json:
                    typer.echo(item, nl=False)
        assert answer is not None
        if as_json:
            typer.echo(json.dumps(answer.to_dict()))
            return EXIT_OK
        if answer.error:
            typer.echo(f"warning: {answer.error}\nSources found (no generated answer):", err=True)
        elif not answer.text.strip():
            typer.echo("(the model gave no answer)")
        typer.echo("")
        for c in answer.citations:
            page = f", page {c.page}" if c.page is not None else ""
            typer.echo(f"[{c.number}] {Path(c.source).name}{page}: {c.snippet[:120]!r}")
        return EXIT_OK

    _run(body)


@app.command()
def docs(kb: Optional[str] = KbOpt, data_dir: Optional[str] = DataOpt, as_json: bool = JsonOpt) -> None:
    """List the documents of a knowledge base."""

    def body() -> int:
        with _open(_settings(kb, data_dir)) as rag:
            documents = rag.documents()
        if as_json:
            typer.echo(json.dumps([d.__dict__ for d in documents]))
        else:
            for d in documents:
                typer.echo(f"{d.doc_id[:12]}  {d.pages:4d}p {d.chunks:5d}c  {Path(d.source).name}")
        return EXIT_OK

    _run(body)


@app.command()
def delete(
    doc: str = typer.Argument(..., help="Document id, id prefix or source."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Remove a document from every index."""

    def body() -> int:
        with _open(_settings(kb, data_dir)) as rag:
            removed = rag.delete(doc)
        typer.echo(json.dumps({"deleted": removed.doc_id, "source": removed.source}) if as_json else f"deleted {removed.source}")
        return EXIT_OK

    _run(body)


@app.command()
def ui(port: int = typer.Option(8501, help="Port on 127.0.0.1.")) -> None:
    """Start the Streamlit UI on http://127.0.0.1:PORT."""
    import subprocess

    app_py = Path(__file__).resolve().parent.parent / "app.py"
    raise typer.Exit(
        subprocess.call(
            [sys.executable, "-m", "streamlit", "run", str(app_py), "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        )
    )


def _register_commands() -> None:
    from rag.commands import register_all

    register_all()


_register_commands()


def main() -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except HopragError as exc:  # raised while parsing settings
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
