"""``hoprag bench ingest FILE...``: cold ingest into a fresh knowledge base, then an unchanged re-ingest.

``--ray-nodes 1,2`` adds cold ingests on local Ray clusters of that many one-CPU nodes (rag.bench.ray_ingest).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

from rag.commands.common import EXIT_ERROR, EXIT_OK, JsonOpt, bench_app, load_settings, run


@bench_app.command("ingest")
def bench_ingest(
    files: list[Path] = typer.Argument(..., help="Files to ingest (e.g. gnuplot.pdf liboctave.pdf)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary data dir and print its path."),
    ray_nodes: Optional[str] = typer.Option(
        None, "--ray-nodes", help="Also ingest on local Ray clusters of these node counts (one CPU each), e.g. 1,2; "
        "each into a fresh local chroma run server (needs the ray extra).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Print pages, chunks, cold and re-ingest seconds and pages/s (model load excluded)."""

    def body() -> int:
        from rag.bench.ray_ingest import bench_ray, node_counts, snapshot
        from rag.pipeline import RAG

        counts = node_counts(ray_nodes) if ray_nodes is not None else []
        data_dir = tempfile.mkdtemp(prefix="hoprag-bench-ingest-")
        ray_figures = None
        try:
            # A fresh data dir: empty knowledge base and empty embedding cache.
            settings = load_settings("bench", data_dir)
            with RAG(settings) as rag:
                rag.embedder.embed(["warm up"])  # load the model outside the timed part
                t0 = time.perf_counter()
                cold = rag.ingest(files)
                cold_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = rag.ingest(files)
                reingest_s = time.perf_counter() - t0
                local = snapshot(rag.store) if counts else None
            if counts:
                ray_figures = bench_ray(files, counts, settings, Path(data_dir), local)
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
        if ray_figures is not None:
            figures["ray"] = ray_figures
        if keep:
            figures["data_dir"] = data_dir
        if as_json:
            typer.echo(json.dumps(figures))
        else:
            typer.echo(f"files {figures['files']}  pages {pages}  chunks {chunks}")
            typer.echo(f"cold ingest   {cold_s:8.2f} s   {figures['pages_per_s']:.1f} pages/s")
            typer.echo(f"re-ingest     {reingest_s:8.3f} s   ({figures['reingest_speedup']}x faster, unchanged files)")
            for n, r in (ray_figures or {}).items():
                typer.echo(f"ray {n} node(s) {r['cold_s']:8.2f} s   {r['pages_per_s']:.1f} pages/s"
                           + (f"   {r['speedup']}x vs {counts[0]}" if "speedup" in r else "")
                           + ("" if r.get("same_chunks_as_local", True) else "   CHUNKS DIFFER from the local ingest"))
            for line in figures["failed"]:
                typer.echo(f"failed: {line}")
        ray_ok = all(not r["failed"] for r in (ray_figures or {}).values())
        return EXIT_OK if cold.ok and ray_ok else EXIT_ERROR

    run(body)
