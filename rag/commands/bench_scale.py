"""``hoprag bench scale``: ingest rate, memory, disk, retrieval latency, ANN recall and one-document
writes at growing sizes of a synthetic corpus (see :mod:`rag.bench.scale`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from rag.commands.common import EXIT_ERROR, EXIT_OK, JsonOpt, bench_app, run


@bench_app.command("scale")
def bench_scale(
    chunks: str = typer.Option("10000,100000", "--chunks", help="Comma-separated sizes, in chunks."),
    vectors: str = typer.Option("random", "--vectors", help="random: seeded unit vectors; model: the embedder."),
    data_dir: Optional[str] = typer.Option(
        None, "--data-dir", help="Where to build the KBs (default: a temp dir, removed)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the corpus and vectors."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a PNG plot of the figures here."),
    as_json: bool = JsonOpt,
) -> None:
    """Measure the store at each size, each in its own process; print one JSON object last with --json."""

    def body() -> int:
        from rag.errors import ConfigError

        if vectors not in ("random", "model"):
            raise ConfigError(f"--vectors {vectors!r}: use random or model")
        try:
            sizes = [int(s) for s in chunks.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--chunks {chunks!r}: give sizes like 10000,100000") from None
        root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="hoprag-scale-"))
        results: dict[str, dict] = {}
        try:
            for size in sizes:
                where = root / f"scale-{size}"
                shutil.rmtree(where, ignore_errors=True)
                where.mkdir(parents=True)
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
                proc = subprocess.run(
                    [sys.executable, "-m", "rag.bench.scale", str(size), str(where), vectors, str(seed)],
                    capture_output=True, text=True, env=env,
                )
                if proc.returncode != 0:
                    typer.echo(f"size {size} failed: {proc.stderr.strip().splitlines()[-1:]}", err=True)
                    return EXIT_ERROR
                results[str(size)] = json.loads(proc.stdout.strip().splitlines()[-1])
                if not as_json:
                    r = results[str(size)]
                    typer.echo(
                        f"{size:>9} chunks  ingest {r['ingest_chunks_per_s']:8.0f}/s  rss {r['rss_mb']:7.0f} MB  "
                        f"disk {r['disk_mb']:7.0f} MB  p50 {r['p50_ms']}  recall@10 {r['recall10_vs_exact']}  "
                        f"add one doc {r['add_one_doc_s']} s"
                    )
        finally:
            if not data_dir:
                shutil.rmtree(root, ignore_errors=True)
        if plot:
            from rag.bench.scale import plot as draw

            draw(results, Path(plot))
        if as_json:
            typer.echo(json.dumps({"sizes": results}))
        return EXIT_OK

    run(body)
