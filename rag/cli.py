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
    paths: list[str] = typer.Argument(..., help="Files, folders or http(s) URLs (a sitemap URL: the pages it lists)."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    password: bool = typer.Option(False, "--password", help="Ask for the password of encrypted PDFs (not echoed)."),
    crawl_depth: int = typer.Option(0, "--crawl-depth", min=0, help="URLs: follow same-site links this deep."),
    max_pages: int = typer.Option(50, "--max-pages", min=1, help="URLs: at most this many pages per URL."),
    as_json: bool = JsonOpt,
) -> None:
    """Add documents or web pages to a knowledge base (unchanged ones are skipped)."""

    def body() -> int:
        from ingest.progress import terminal_progress

        secret = typer.prompt("PDF password", hide_input=True, err=True) if password else None
        with _open(_settings(kb, data_dir)) as rag:
            report = rag.ingest(paths, progress=terminal_progress(quiet=as_json), password=secret,
                                crawl_depth=crawl_depth, max_pages=max_pages)
        if as_json:
            typer.echo(json.dumps(report.to_dict()))
        else:
            for f in report.files:
                detail = f.reason if f.status == "failed" else f"{f.pages} pages, {f.chunks} chunks"
                typer.echo(f"{f.status:9} {f.source if '://' in f.source else Path(f.source).name}: {detail}")
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
    answer_mode: Optional[str] = typer.Option(
        None, "--answer-mode", help="extractive (no LLM, quotes the evidence), generative or grounded (checked)."
    ),
    max_tokens: Optional[int] = typer.Option(
        None, "--max-tokens", min=0, help="Answer length limit in tokens (0: the engine's default)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Answer a question with cited passages and the evidence sentences behind them."""

    def body() -> int:
        from rag.types import Answer

        settings = _settings(kb, data_dir, top_k=top_k, strategy=strategy, answer_mode=answer_mode,
                             max_new_tokens=max_tokens)
        from rag.answer import resolve_mode

        # Only a generative answer is final as it streams; the others are checked or quoted first.
        live = not as_json and resolve_mode(settings) == "generative"
        with _open(settings) as rag:
            answer = None
            for item in rag.stream(question):
                if isinstance(item, Answer):
                    answer = item
                elif live:
                    typer.echo(item, nl=False)
        assert answer is not None
        if as_json:
            typer.echo(json.dumps(answer.to_dict()))
            return EXIT_OK
        if not live and answer.text:
            typer.echo(answer.text, nl=False)
        if answer.error:
            typer.echo(f"warning: {answer.error}\nSources found (no generated answer):", err=True)
        elif not answer.text.strip():
            typer.echo("(the model gave no answer)")
        typer.echo("")
        for sentence in answer.unsupported:
            typer.echo(f"(left out, no passage supports it: {sentence})")
        for c in answer.citations:
            page = f", page {c.page}" if c.page is not None else ""
            typer.echo(f"[{c.number}] {Path(c.source).name}{page}")
            for h in c.highlights or ():
                typer.echo(f"    > {' '.join(c.text[h.start:h.end].split())}")
            if not c.highlights:
                typer.echo(f"    {c.snippet[:120]!r}")
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
