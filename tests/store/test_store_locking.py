"""The store's locks: one mechanism (filelock) for the index lock and the batch-writer lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import StoreError
from rag.store import Store
from rag.store.layout import Layout
from rag.store.locking import FileMutex

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False"}


def test_import_needs_no_posix_only_module():
    """`import rag` and the store work where fcntl does not exist (Windows)."""
    code = "import sys; sys.modules['fcntl'] = None; import rag, rag.store, rag.consistency; print('ok')"
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_batch_writer_lock_excludes_other_processes_until_its_holder_dies(tmp_path):
    index = tmp_path / "index"
    Store(index, "kb").close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from pathlib import Path; from rag.store import Store;"
         f"s = Store(Path({str(index)!r}), 'kb'); cm = s.write_lock(); cm.__enter__();"
         "print('held', flush=True); time.sleep(120)"],
        env=ENV, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match=f"pid {holder.pid}"):
            with FileMutex(Layout(index, "kb").writer_lock).hold(timeout_s=0.3):
                pass
    finally:
        holder.kill()  # SIGKILL: the OS drops the lock
        holder.wait(10)
    store = Store(index, "kb")
    try:
        with store.write_lock():
            with store.write_lock():  # re-entrant within a thread
                assert store.recover() == []
    finally:
        store.close()
