"""``hoprag ingest``, ``hoprag docs`` and ``hoprag delete``: what a knowledge base holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperCommand

from rag.commands import common
from rag.commands.common import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, DataOpt, JsonOpt, KbOpt, app, load_settings, run
from rag.errors import ConfigError


class _OptionalRayValue(TyperCommand):
    """``--ray`` with no value means ``--ray auto`` (typer has no option whose value may be left out)."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args.insert(i + 1, "auto")
                break
        return super().parse_args(ctx, args)


@app.command(cls=_OptionalRayValue)
def ingest(
    paths: list[str] = typer.Argument(..., help="Files, folders or http(s) URLs (a sitemap URL: the pages it lists)."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    password: bool = typer.Option(False, "--password", help="Ask for the password of encrypted PDFs (not echoed)."),
    crawl_depth: int = typer.Option(0, "--crawl-depth", min=0, help="URLs: follow same-site links this deep."),
    max_pages: int = typer.Option(50, "--max-pages", min=1, help="URLs: at most this many pages per URL."),
    ray: Optional[str] = typer.Option(
        None, "--ray", metavar="[ADDRESS]",
        help="Parse and embed on a Ray cluster (HOST:PORT, ray://HOST:PORT; alone: the cluster on this machine "
        "or RAY_ADDRESS, else a new local one). Put it after the paths.",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Add documents or web pages to a knowledge base (unchanged ones are skipped)."""

    def body() -> int:
        from ingest.progress import terminal_progress

        inputs, address = _ray_address(paths, ray)
        secret = typer.prompt("PDF password", hide_input=True, err=True) if password else None
        with common.open_rag(load_settings(kb, data_dir)) as rag:
            report = rag.ingest(inputs, progress=terminal_progress(quiet=as_json), password=secret,
                                crawl_depth=crawl_depth, max_pages=max_pages, ray=address)
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

    run(body)


def _ray_address(paths: list[str], ray: str | None) -> tuple[list[str], str | None]:
    """The inputs and ``RAG.ingest``'s ``ray`` ("" = ``ray.init()``'s choice) from ``--ray [ADDRESS]``.

    ``--ray`` before a path takes the path as its value: an existing path that is no address goes back to the inputs.
    """
    if ray is None:
        return paths, None
    if ray == "auto":
        return paths, ""
    if ":" in ray or ray == "local":
        return paths, ray
    if Path(ray).exists():
        return [ray, *paths], ""
    raise ConfigError(f"--ray {ray!r} is not a Ray address: give HOST:PORT or ray://HOST:PORT, or --ray alone")


@app.command()
def docs(kb: Optional[str] = KbOpt, data_dir: Optional[str] = DataOpt, as_json: bool = JsonOpt) -> None:
    """List the documents of a knowledge base."""

    def body() -> int:
        with common.open_rag(load_settings(kb, data_dir)) as rag:
            documents = rag.documents()
        if as_json:
            typer.echo(json.dumps([d.__dict__ for d in documents]))
        else:
            for d in documents:
                typer.echo(f"{d.doc_id[:12]}  {d.pages:4d}p {d.chunks:5d}c  {Path(d.source).name}")
        return EXIT_OK

    run(body)


@app.command()
def delete(
    doc: str = typer.Argument(..., help="Document id, id prefix or source."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Remove a document from every index."""

    def body() -> int:
        with common.open_rag(load_settings(kb, data_dir)) as rag:
            removed = rag.delete(doc)
        if as_json:
            typer.echo(json.dumps({"deleted": removed.doc_id, "source": removed.source}))
        else:
            typer.echo(f"deleted {removed.source}")
        return EXIT_OK

    run(body)
