"""kill -9 in the middle of an ingest, then a rerun: nothing half-written is ever visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.pipeline import IngestOptions, Ingestor
from rag.store import Store

ROOT = Path(__file__).resolve().parents[2]

# Ingest the files one by one; the Chroma write of the second document stops
# halfway (chunks partly in Chroma, manifest row pending) and waits to be killed.
CHILD = r"""
import sys, time
from pathlib import Path
import netguard  # no network in the child either
from rag.embed.local import LocalEmbedder
from rag.config import Settings
from rag.store import Store
from ingest.pipeline import IngestOptions, Ingestor

index_dir, models_dir, *files = sys.argv[1:]
store = Store(index_dir, "crash")
real_upsert = store.vectors.upsert
calls = []

def slow_upsert(chunks, vectors):
    calls.append(1)
    if len(calls) == 2:
        half = len(chunks) // 2
        real_upsert(chunks[:half], vectors[:half])
        print("HALFWAY", flush=True)
        time.sleep(120)
    real_upsert(chunks, vectors)

store.vectors.upsert = slow_upsert
progress = lambda source, stage, frac: stage == "done" and print("DONE", source, flush=True)
Ingestor(store, LocalEmbedder(Path(models_dir)), IngestOptions(workers=1, chunk_tokens=40, chunk_overlap=0)).ingest(files, progress)
print("FINISHED", flush=True)
"""


def write_files(root: Path) -> list[Path]:
    files = []
    for n in range(4):
        path = root / f"doc{n}.md"
        body = "\n\n".join(f"## Section {s}\n\nDocument {n} section {s} mentions keyword{n} and topic{s}." for s in range(12))
        path.write_text(f"# Doc {n}\n\n{body}\n")
        files.append(path)
    return files


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def check_consistent(store: Store) -> set[str]:
    docs = store.documents()
    expected = {f"{d.doc_id}:{i:05d}" for d in docs for i in range(d.chunks)}
    chroma = store.collection.get(include=[])["ids"]
    bm25 = store.bm25_index().ids
    assert len(chroma) == len(set(chroma)) and len(bm25) == len(set(bm25))
    assert set(chroma) == expected == set(bm25)
    return expected


@pytest.mark.timeout(300)
def test_kill_mid_ingest_then_rerun(tmp_path, embedder, base_settings):
    files = write_files(tmp_path)
    index_dir = tmp_path / "index"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(index_dir), str(base_settings.models_dir), *map(str, files)],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "child.log", "wb"),
        text=True,
        env=env,
    )
    lines = []
    try:
        deadline = time.monotonic() + 240
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("HALFWAY") or time.monotonic() > deadline:
                break
        assert lines and lines[-1] == "HALFWAY", (lines, (tmp_path / "child.log").read_text(errors="replace")[-800:])
        workers = [int(p) for p in Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split()]
        assert workers, "the parser worker process is missing"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert [ln.split()[0] for ln in lines] == ["DONE", "HALFWAY"]
    # The orphaned parser worker notices and exits too.
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in workers):
        assert time.monotonic() < deadline, f"parser worker(s) {workers} outlived the killed ingest"
        time.sleep(0.2)

    store = Store(index_dir, "crash")
    try:
        # Before any recovery: the half-written document is in Chroma but invisible.
        assert len(store.documents()) == 1 and len(store.documents(include_pending=True)) == 2
        visible = {h.chunk.doc_id for h in store.bm25_search("document section", 50)}
        visible |= {h.chunk.doc_id for h in store.query(embedder.embed(["document section keyword1"])[0], 50)}
        assert visible == {store.documents()[0].doc_id}
        assert store.bm25_search("keyword1", 5) == []

        # Running the same command again completes the job.
        report = Ingestor(store, embedder, IngestOptions(chunk_tokens=40, chunk_overlap=0)).ingest(files)
        assert [f.status for f in report.files] == ["unchanged", "added", "added", "added"]
        ids = check_consistent(store)
        assert len(store.documents()) == 4 and len(store.documents(include_pending=True)) == 4
        assert len(ids) == sum(f.chunks for f in report.files)
        assert store.bm25_search("keyword1", 1)[0].chunk.source == str(files[1].resolve())
    finally:
        store.close()
