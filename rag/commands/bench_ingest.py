"""``hoprag bench ingest FILE...``: cold ingest into a fresh knowledge base, then an unchanged re-ingest."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import typer

from rag.commands.common import EXIT_ERROR, EXIT_OK, JsonOpt, bench_app, load_settings, run


@bench_app.command("ingest")
def bench_ingest(
    files: list[Path] = typer.Argument(..., help="Files to ingest (e.g. gnuplot.pdf liboctave.pdf)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary data dir and print its path."),
    as_json: bool = JsonOpt,
) -> None:
    """Print pages, chunks, cold and re-ingest seconds and pages/s (model load excluded)."""

    def body() -> int:
        from rag.pipeline import RAG

        data_dir = tempfile.mkdtemp(prefix="hoprag-bench-ingest-")
        try:
            # A fresh data dir: empty knowledge base and empty embedding cache.
            with RAG(load_settings("bench", data_dir)) as rag:
                rag.embedder.embed(["warm up"])  # load the model outside the timed part
                t0 = time.perf_counter()
                cold = rag.ingest(files)
                cold_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = rag.ingest(files)
                reingest_s = time.perf_counter() - t0
        finally:
            if not keep:
                shutil.rmtree(data_dir, ignore_errors=True)
        pages = sum(f.pages for f in cold.files)
        chunks = sum(f.chunks for f in cold.files)
        figures = {
            "files": len(cold.files),
            "failed": [f"{Path(f.source).name}: {f.reason}" for f in cold.failed],
            "pages": pages,
            "chunks": chunks,
            "cold_s": round(cold_s, 3),
            "reingest_s": round(reingest_s, 4),
            "pages_per_s": round(pages / cold_s, 2) if cold_s > 0 else 0.0,
            "reingest_speedup": round(cold_s / reingest_s, 1) if reingest_s > 0 else None,
            "reingest_unchanged": sum(f.status == "unchanged" for f in again.files),
        }
        if keep:
            figures["data_dir"] = data_dir
        if as_json:
            typer.echo(json.dumps(figures))
        else:
            typer.echo(f"files {figures['files']}  pages {pages}  chunks {chunks}")
            typer.echo(f"cold ingest   {cold_s:8.2f} s   {figures['pages_per_s']:.1f} pages/s")
            typer.echo(f"re-ingest     {reingest_s:8.3f} s   ({figures['reingest_speedup']}x faster, unchanged files)")
            for line in figures["failed"]:
                typer.echo(f"failed: {line}")
        return EXIT_OK if cold.ok else EXIT_ERROR

    run(body)
