"""``hoprag bench scale`` on a tiny size: the JSON contract of the issue, and the plot."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rag.cli import app


def test_bench_scale_json_and_plot(tmp_path):
    plot = tmp_path / "scale.png"
    result = CliRunner().invoke(
        app, ["bench", "scale", "--chunks", "300", "--vectors", "random", "--data-dir", str(tmp_path / "d"),
              "--plot", str(plot), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    row = out["sizes"]["300"]
    for key in ("ingest_chunks_per_s", "rss_mb", "disk_mb", "recall10_vs_exact", "add_one_doc_s"):
        assert isinstance(row[key], float) and row[key] > 0, key
    for key in ("p50_ms", "p95_ms"):
        assert set(row[key]) == {"single", "hybrid", "hops"} and all(v > 0 for v in row[key].values())
    assert row["recall10_vs_exact"] <= 1.0 and row["chunks"] == 300
    assert plot.stat().st_size > 1000


def test_bench_scale_refuses_a_bad_option(tmp_path):
    result = CliRunner().invoke(app, ["bench", "scale", "--chunks", "300", "--vectors", "nope"])
    assert result.exit_code != 0 and "--vectors" in result.output
