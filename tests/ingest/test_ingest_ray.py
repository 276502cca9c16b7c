"""``hoprag ingest --ray``: a local Ray cluster of two one-CPU nodes writing into a real ``chroma run`` server.

The cluster and the server are started here (rag.bench.local_cluster, the benchmark's
helpers) and stopped by the fixture, also when a test fails. Each parse task sleeps
first (ingest.distributed.PAUSE_ENV, read by the workers), so a test can find the
worker running one and kill it. Drivers run as ``hoprag ingest --ray`` processes with
the cluster's token in their environment (Ray reads it once, when it is imported).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ingest_files import HTML, MARKDOWN, PAGES, TEXT, make_pdf
from typer.testing import CliRunner

from ingest.distributed import PAUSE_ENV
from rag.bench.local_cluster import chroma_server, free_port, ray_cluster
from rag.bench.ray_ingest import snapshot
from rag.cli import app
from rag.pipeline import RAG
from rag.types import FileResult, IngestReport

PAUSE_S = 3.0
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the ray extra is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-cluster")
    with chroma_server(root / "chroma") as chroma, ray_cluster(2, root, env={PAUSE_ENV: str(PAUSE_S)}) as ray:
        yield {"address": ray.address, "chroma": chroma.url, "temp": ray.temp_dir, "env": ray.env}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Four tiny files of four kinds."""
    root = tmp_path_factory.mktemp("ray-docs")
    (root / "handbook.pdf").write_bytes(make_pdf(PAGES))
    (root / "llamas.md").write_text(MARKDOWN)
    (root / "textiles.html").write_text(HTML)
    (root / "vicuna.txt").write_text(TEXT)
    return root


def _ingest_cli(cluster, data: Path, kb: str, folder: Path) -> subprocess.Popen:
    """``hoprag ingest FOLDER --ray ADDRESS --json`` into the Chroma server, as a process of its own."""
    env = {**os.environ, **cluster["env"], "HOPRAG_DATA_DIR": str(data), "HOPRAG_CHROMA_URL": cluster["chroma"]}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "hoprag"), "ingest", str(folder), "--kb", kb, "--json",
         "--ray", cluster["address"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )


def _report(proc: subprocess.Popen) -> list[str]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    return sorted(f["status"] for f in json.loads(out.strip().splitlines()[-1])["files"])


def _local(make_rag, folder: Path):
    rag = make_rag(kb="local")
    report = rag.ingest([folder])
    assert [f.status for f in report.files] == ["added"] * 4
    return snapshot(rag.store)


@needs_ray
@pytest.mark.slow  # a two-node Ray cluster and a Chroma server: about a minute for this file
def test_ray_ingest_matches_a_local_ingest(cluster, folder, settings, make_rag, tmp_path):
    local = _local(make_rag, folder)
    data = tmp_path / "ray-data"
    assert _report(_ingest_cli(cluster, data, "ray", folder)) == ["added"] * 4
    # Unchanged files are found by their hash in the driver: no task runs.
    assert _report(_ingest_cli(cluster, data, "ray", folder)) == ["unchanged"] * 4
    with RAG(settings.replace(data_dir=str(data), chroma_url=cluster["chroma"], kb="ray")) as rag:
        got = snapshot(rag.store)
        assert rag.store.bm25_search("Rosa Quispe", 1)[0].chunk.page == 3  # the lexical index was written too
        assert len(rag.documents()) == 4
    assert not (data / "index" / "chroma").exists()  # the chunks went to the server
    # Another replica (its own data dir, same Chroma server) sees the documents, BM25 included: the registry.
    with RAG(settings.replace(data_dir=str(tmp_path / "replica"), chroma_url=cluster["chroma"], kb="ray")) as other:
        assert len(other.documents()) == 4 and other.store.bm25_search("Rosa Quispe", 1)[0].chunk.page == 3
    assert set(got) == set(local)
    assert all(got[i][0] == local[i][0] for i in local)
    cosines = [float(np.dot(got[i][1], local[i][1])) for i in local]
    assert min(cosines) >= 0.99, min(cosines)


def _parse_workers(temp: Path) -> list[int]:
    """Pids of this cluster's Ray workers running a parse task (children of its raylets)."""
    procs: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        procs[int(entry.name)] = (ppid, cmd)
    raylets = {pid for pid, (_, cmd) in procs.items() if "raylet" in cmd.split(" ")[0] and str(temp) in cmd}
    return [pid for pid, (ppid, cmd) in procs.items() if ppid in raylets and cmd.startswith("ray::parse_task")]


@needs_ray
@pytest.mark.slow
def test_killed_worker_is_retried_and_every_document_is_there_once(cluster, folder, tmp_path, make_rag):
    data = tmp_path / "data"
    proc = _ingest_cli(cluster, data, "killed", folder)
    killed = None
    try:
        deadline = time.monotonic() + 90
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            workers = _parse_workers(cluster["temp"])
            if workers:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.1)
        statuses = _report(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no Ray worker was seen running a parse task"
    assert statuses == ["added"] * 4  # the killed task was retried, nothing failed
    local = _local(make_rag, folder)
    with RAG(make_rag().settings.replace(data_dir=str(data), chroma_url=cluster["chroma"], kb="killed")) as rag:
        docs = rag.documents()
        assert sorted(Path(d.source).name for d in docs) == sorted(p.name for p in folder.iterdir())
        assert rag.store.count() == sum(d.chunks for d in docs)  # no chunk twice, none of a half document
        assert set(snapshot(rag.store)) == set(local)


def test_ray_option_before_a_path_and_a_bad_address(cli_rag, folder, monkeypatch):
    data = ["--data-dir", cli_rag.data_dir]
    # `--ray` with no value (last, or before another option) reaches RAG.ingest as "" (ray.init()'s choice).
    seen = []

    def fake_ingest(self, paths, progress=None, **kwargs):
        seen.append((list(paths), kwargs["ray"]))
        return IngestReport((FileResult(str(paths[0]), "added", "x", 1, 1),))

    with monkeypatch.context() as patch:
        patch.setattr(RAG, "ingest", fake_ingest)
        for args in (["--ray"], ["--ray", "--kb", "k"], ["--ray", "10.0.0.5:6379"], ["--ray=ray://h:10001"], []):
            assert CliRunner().invoke(app, ["ingest", "a.md", *args, *data]).exit_code == 0
        # `--ray PATH ...` took the path as its value: it goes back to the inputs.
        assert CliRunner().invoke(app, ["ingest", "--ray", str(folder), "a.md", *data]).exit_code == 0
    assert [r for _, r in seen] == ["", "", "10.0.0.5:6379", "ray://h:10001", None, ""]
    assert all(p == ["a.md"] for p, _ in seen[:5]) and seen[5][0] == [str(folder), "a.md"]
    result = CliRunner().invoke(app, ["ingest", str(folder), "--ray", "no-such-cluster", *data])
    assert result.exit_code == 1 and "is not a Ray address" in result.output
    # Nobody at that address: one line at once (ray.init alone would retry for minutes).
    result = CliRunner().invoke(app, ["ingest", str(folder / "vicuna.txt"), "--ray", f"127.0.0.1:{free_port()}", *data])
    assert result.exit_code == 1 and "no Ray cluster answers at 127.0.0.1:" in result.output, result.output
    # Without the extra: one line naming it.
    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(app, ["ingest", str(folder / "vicuna.txt"), "--ray", "127.0.0.1:1", *data])
    assert result.exit_code == 1 and "pip install 'hoprag[ray]'" in result.output, result.output
