"""Concurrency: threads and processes ingesting and asking at once against one knowledge base."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.consistency import check_consistency
from rag.errors import StoreError
from rag.store import Store
from rel_helpers import FakeEngine, free_port, wait_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMA = Path(sys.executable).with_name("chroma")


def _assert_whole(store: Store, expected_sources: set[str]) -> None:
    docs = store.documents()
    assert {d.source for d in docs} == expected_sources, "a document was lost or added twice"
    assert len(docs) == len(expected_sources)
    chunks = store.chunks()
    assert len(chunks) == len({c.id for c in chunks}) == sum(d.chunks for d in docs) == store.count()
    texts = Counter((c.doc_id, c.text) for c in chunks)
    assert max(texts.values()) == 1, "duplicate chunks"
    assert check_consistency(store) == []


def test_threads_share_one_rag(make_rag):
    """6 threads: 4 ingest different files (asking after each), 2 only ask; one RAG, one engine."""
    engine = FakeEngine("Answer [1].")
    rag = make_rag(engine=engine)
    rag.ingest([("seed.md", b"# Seed\n\nThe seed document talks about gardens and tomatoes.\n")])
    errors: list[str] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        try:
            for i in range(3):
                body = f"# Note {w}-{i}\n\nThe codeword of note {w}-{i} is heron{w}y{i}. Filed in drawer {w}{i}.\n"
                report = rag.ingest([(f"t{w}-{i}.md", body.encode())])
                errors.extend(f.reason for f in report.failed)
                answer = rag.ask(f"What is the codeword of note {w}-{i}?")
                if not any(f"heron{w}y{i}" in h.chunk.text for h in answer.passages):
                    errors.append(f"note {w}-{i} not retrieved right after its ingest")
        except Exception as exc:  # every failure is reported below
            errors.append(f"writer {w}: {type(exc).__name__}: {exc}")

    def reader() -> None:
        try:
            while not stop.is_set():
                answer = rag.ask("What do gardens grow?")
                if answer.error or not answer.citations:
                    errors.append(f"reader: {answer.error or 'no citations'}")
        except Exception as exc:
            errors.append(f"reader: {type(exc).__name__}: {exc}")

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(120)
    stop.set()
    for t in readers:
        t.join(30)
    assert errors == []
    expected = {"seed.md"} | {f"t{w}-{i}.md" for w in range(4) for i in range(3)}
    _assert_whole(rag.store, expected)


def _run_workers(data_dir: Path, workers: int, files: int, url: str = "") -> list[dict]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{HERE}", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "ANONYMIZED_TELEMETRY": "False", "OMP_NUM_THREADS": "1"}
    env.pop("HOPRAG_CHROMA_URL", None)
    procs = [
        subprocess.Popen([sys.executable, str(HERE / "concurrency_child.py"), str(data_dir), str(w), str(files)]
                         + ([url] if url else []), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(workers)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check_workers(results: list[dict], store: Store, workers: int, files: int) -> None:
    assert [r["errors"] for r in results] == [[]] * workers
    assert sum(r["added"] for r in results) == workers * files
    _assert_whole(store, {f"w{w}-f{i}.md" for w in range(workers) for i in range(files)})


def test_processes_share_embedded_chroma(tmp_path):
    """3 processes ingest and query one embedded data dir at once: the write lock plus reload keeps it whole.

    Without rag.store.locking this loses documents and breaks queries ("Error finding id").
    """
    data_dir = tmp_path / "data"
    results = _run_workers(data_dir, workers=3, files=3)
    store = Store(data_dir / "index", "default")
    try:
        _check_workers(results, store, 3, 3)
    finally:
        store.close()


@pytest.mark.skipif(not CHROMA.exists(), reason="chroma CLI not installed in the venv")
def test_processes_share_a_chroma_server(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(CHROMA), "run", "--host", "127.0.0.1", "--port", str(port), "--path",
                               str(tmp_path / "chroma")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_port(port, 60)
        results = _run_workers(tmp_path / "data", workers=2, files=2, url=url)
        store = Store(tmp_path / "data" / "index", "default", chroma_url=url)
        try:
            _check_workers(results, store, 2, 2)
        finally:
            store.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


def test_a_held_lock_gives_a_clear_error(tmp_path):
    """A writer that cannot get the lock in time fails with a message naming the way out."""
    data_dir = tmp_path / "data"
    Store(data_dir / "index", "default").close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from rag.store import Store;"
         f"s = Store(Path({str(data_dir / 'index')!r}), 'default');"
         "cm = s.locked(write=True); cm.__enter__(); print('held', flush=True); time.sleep(60)"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False"},
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(StoreError) as info:
            # Opening the embedded Chroma may create it, so it waits for the lock like any write.
            Store(data_dir / "index", "default", lock_timeout_s=0.5).recover()
        assert time.monotonic() - t0 < 10
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "HOPRAG_CHROMA_URL" in message and "chroma run" in message
    finally:
        holder.kill()
        holder.wait(10)
    # Once the holder is gone (even killed), the lock is free again.
    store = Store(data_dir / "index", "default", lock_timeout_s=5)
    assert store.recover() == []
    store.close()
