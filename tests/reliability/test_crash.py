"""Crash consistency: kill -9 during delete, between a commit and its lexical write, and during a lexical
rebuild, then check and rerun."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.consistency import check_consistency, repair
from rag.store import Store
from rel_helpers import DOCS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def template(tmp_path_factory, embedder) -> Path:
    """A data dir with the three documents, copied fresh for each crash."""
    data_dir = tmp_path_factory.mktemp("crash-template")
    with RAG(Settings(data_dir=str(data_dir)), embedder=embedder) as rag:
        assert rag.ingest([(n, t.encode()) for n, t in DOCS.items()]).ok
        rag.store.rebuild_bm25()
    return data_dir


def _fresh(template: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(template, data_dir)
    return data_dir


def _crash(data_dir: Path, operation: str, point: str, tmp_path: Path) -> None:
    """Run the operation in a child process and SIGKILL it at ``point``."""
    ready = tmp_path / f"ready-{operation}-{point}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen([sys.executable, str(HERE / "crash_child.py"), str(data_dir), operation, point, str(ready)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    try:
        while not ready.exists():
            if proc.poll() is not None:
                raise AssertionError(f"child exited early: {proc.communicate()[1].decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("child never reached the crash point")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("point", ["before-chroma", "after-chroma"])
def test_kill_during_delete(template, tmp_path, point):
    data_dir = _fresh(template, tmp_path)
    _crash(data_dir, "delete", point, tmp_path)
    store = Store(data_dir / "index", "default")
    try:
        # The document was hidden before its chunks were touched: queries never see half of it.
        assert "moon.md" not in [d.source for d in store.documents()]
        assert all(c.source != "moon.md" for c in store.chunks())
        problems = check_consistency(store)
        assert len(problems) == 1 and "'deleting'" in problems[0] and "hoprag reindex" in problems[0]
        # The rerun (any next write, or hoprag reindex) completes the delete.
        assert len(store.recover()) == 1
        assert check_consistency(store) == []
        assert sorted(d.source for d in store.documents()) == ["paris.md", "tea.md"]
        assert store.count() == sum(d.chunks for d in store.documents())
        assert store.bm25_index().ids == sorted(c.id for c in store.chunks())
    finally:
        store.close()


@pytest.mark.parametrize("point", ["mid-chunks", "before-rename"])
def test_kill_during_bm25_rebuild(template, tmp_path, point):
    data_dir = _fresh(template, tmp_path)
    store = Store(data_dir / "index", "default")
    shutil.rmtree(store.bm25_dir)  # no saved base: the child saves a new one
    before = sorted(store.lexical.table.ids())
    store.close()
    _crash(data_dir, "rebuild-bm25", point, tmp_path)
    store = Store(data_dir / "index", "default")
    try:
        # A torn rebuild leaves the old complete rows (SQLite rolled back) and at most a temporary base file;
        # the rebuild bumped the generation first, so a table rolled back is one behind (and catches up).
        behind = 1 if point == "mid-chunks" else 0
        assert store.lexical.table.generation() == store.generation() - behind
        assert sorted(store.lexical.table.ids()) == before
        assert not list(store.bm25_dir.glob("base-*")) if store.bm25_dir.exists() else True
        assert check_consistency(store) == []
        report = repair(store)  # the rerun: hoprag reindex
        assert report["problems"] == [] and report["bm25_chunks"] == store.count()
        store.lexical.wait_saved()
        assert len(list(store.bm25_dir.glob("base-*.npz"))) == 1
        assert sorted(store.bm25_index().ids) == sorted(c.id for c in store.chunks())
        assert "Eiffel" in store.bm25_search("Eiffel Tower finished", 1)[0].chunk.text
    finally:
        store.close()


def test_kill_between_commit_and_lexical_write(template, tmp_path):
    data_dir = _fresh(template, tmp_path)
    _crash(data_dir, "add", "after-commit", tmp_path)
    store = Store(data_dir / "index", "default")
    try:
        # The manifest committed the document; the lexical index is a generation behind and catches up.
        assert store.lexical.table.generation() == store.generation() - 1
        assert check_consistency(store) == []
        assert store.bm25_search("quokkas Rottnest", 1)[0].chunk.id == "extra:00000"
        assert store.lexical.table.generation() == store.generation()
        assert sorted(store.bm25_index().ids) == sorted(c.id for c in store.chunks())
    finally:
        store.close()


def test_corrupt_lexical_file_is_set_aside_and_rebuilt(template, tmp_path, caplog):
    data_dir = _fresh(template, tmp_path)
    path = data_dir / "index" / "default" / "lexical.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    path.write_bytes(b"\x00not a database" * 100)
    store = Store(data_dir / "index", "default")
    try:
        assert "unreadable" in caplog.text and list(path.parent.glob("lexical.sqlite.corrupt-*"))
        assert check_consistency(store) == []  # behind the manifest: the next query catches up
        assert "Eiffel" in store.bm25_search("Eiffel Tower finished", 1)[0].chunk.text
        assert sorted(store.bm25_index().ids) == sorted(c.id for c in store.chunks())
    finally:
        store.close()


def test_lost_lexical_row_is_reported_and_repaired(template, tmp_path):
    data_dir = _fresh(template, tmp_path)
    store = Store(data_dir / "index", "default")
    try:
        store.lexical.table.db().execute("DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks LIMIT 1)")
        problems = check_consistency(store)
        assert len(problems) == 1 and "BM25" in problems[0] and "hoprag reindex" in problems[0]
        # hoprag reindex rebuilds the lexical index from Chroma.
        assert repair(store)["problems"] == []
        assert "Eiffel" in store.bm25_search("Eiffel Tower finished", 1)[0].chunk.text
    finally:
        store.close()
