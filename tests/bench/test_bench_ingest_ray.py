"""``hoprag bench ingest FILE --ray-nodes 1,2 --json`` on one tiny file: the JSON contract of issue 22."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app

TEXT = "\n\n".join(
    f"## Station {i}\n\nThe weather station at {name} records wind and snow every hour." for i, name in
    enumerate(["Cusco", "Puno", "Arequipa", "Juliaca", "Ayacucho", "Huancayo"])
)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the ray extra is not installed")
@pytest.mark.slow  # starts a one-node and a two-node Ray cluster and two Chroma servers: about a minute
def test_bench_ingest_ray_nodes_json(tmp_path):
    doc = tmp_path / "stations.md"
    doc.write_text(TEXT)
    # A process of its own: the benchmark is the clusters' driver and gives Ray their token before importing it.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hoprag"), "bench", "ingest", str(doc), "--ray-nodes", "1,2", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["chunks"] > 0 and out["cold_s"] > 0  # the local figures are still there
    assert set(out["ray"]) == {"1", "2"}
    for n, row in out["ray"].items():
        assert isinstance(row["cold_s"], float) and row["cold_s"] > 0, n
        assert row["chunks"] == out["chunks"] and row["files"] == 1 and row["failed"] == []
        assert row["same_chunks_as_local"] is True and row["min_cosine_vs_local"] >= 0.99
    assert out["ray"]["2"]["speedup"] > 0


def test_bench_ingest_refuses_bad_node_counts(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nSome text.")
    result = CliRunner().invoke(app, ["bench", "ingest", str(doc), "--ray-nodes", "0,2"])
    assert result.exit_code == 1 and "--ray-nodes" in result.output
