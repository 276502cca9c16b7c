"""Faults: the LLM server down, slow or sending garbage, the Chroma server down, index files corrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.consistency import check_consistency, repair
from rag.errors import StoreError

from rel_helpers import DOCS, free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
CHROMA = Path(sys.executable).with_name("chroma")
QUESTION = "When was the Eiffel Tower finished?"


@pytest.fixture(scope="module")
def kb_settings(tmp_path_factory, embedder) -> Settings:
    """One small knowledge base shared by the LLM fault tests (only the engine differs)."""
    settings = Settings(data_dir=str(tmp_path_factory.mktemp("faults")))
    with RAG(settings, embedder=embedder) as rag:
        assert rag.ingest([(n, t.encode()) for n, t in DOCS.items()]).ok
    return settings


@pytest.mark.parametrize("mode", ["down", "slow", "garbage", "garbage-sse", "schema", "error"])
def test_llm_fault_gives_retrieval_only_answer(kb_settings, embedder, faulty_llm, mode):
    url = f"http://127.0.0.1:{free_port()}/v1" if mode == "down" else faulty_llm(mode, delay_s=30).url
    settings = kb_settings.replace(engine="openai", llm_base_url=url, llm_model="m", llm_timeout_s=1.0)
    with RAG(settings, embedder=embedder) as rag:
        t0 = time.monotonic()
        items = list(rag.stream(QUESTION))
        elapsed = time.monotonic() - t0
    answer = items[-1]
    assert len(items) == 1, f"text was streamed before the failure: {items[:-1]}"
    # Bounded by the 1 s timeout (plus retrieval), far below the server's 30 s stall: no hang.
    assert elapsed < 10, f"{mode}: took {elapsed:.1f}s"
    assert answer.error and url.split("/v1")[0] in answer.error, answer.error
    assert answer.text == ""
    assert answer.citations, "a retrieval-only answer still lists its sources"
    assert [c.chunk_id for c in answer.citations] == [h.chunk.id for h in answer.passages]
    assert any("Eiffel" in c.text for c in answer.citations)


def test_llm_healthy_server_control(kb_settings, embedder, faulty_llm):
    """The same loopback server in 'ok' mode answers: the fault tests fail for the fault, not the setup."""
    srv = faulty_llm("ok")
    settings = kb_settings.replace(engine="openai", llm_base_url=srv.url, llm_model="m", llm_timeout_s=5.0)
    with RAG(settings, embedder=embedder) as rag:
        answer = rag.ask(QUESTION)
    assert not answer.error and answer.text.startswith("Paris")
    assert srv.requests == 1


# ---- Chroma server -------------------------------------------------------------------


def _start_chroma(port: int, path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_port(port, 60)
    except TimeoutError:
        proc.kill()
        raise
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.mark.skipif(not CHROMA.exists(), reason="chroma CLI not installed in the venv")
def test_chroma_server_down_then_back(tmp_path, embedder):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(data_dir=str(tmp_path / "data"), chroma_url=url)
    with pytest.raises(StoreError) as info:
        RAG(settings, embedder=embedder)
    assert url in str(info.value) and "HOPRAG_CHROMA_URL" in str(info.value)

    proc = _start_chroma(port, tmp_path / "chroma")
    try:
        rag = RAG(settings, embedder=embedder)  # a new RAG works once the server is up
        assert rag.ingest([(n, t.encode()) for n, t in DOCS.items()]).ok
        assert "Eiffel" in rag.retrieve(QUESTION, k=1)[0].chunk.text

        _stop(proc)  # the server dies under an open RAG: a clear error, not a traceback
        with pytest.raises(StoreError) as info:
            rag.retrieve(QUESTION, k=1)
        assert url in str(info.value)

        proc = _start_chroma(port, tmp_path / "chroma")  # back: the same RAG recovers
        assert "Eiffel" in rag.retrieve(QUESTION, k=1)[0].chunk.text
        assert len(rag.documents()) == len(DOCS)
        rag.close()
    finally:
        _stop(proc)


# ---- index files ------------------------------------------------------------------------


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOPRAG_DATA_DIR": str(data_dir)}
    return subprocess.run([str(Path(sys.executable).with_name("hoprag")), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_corrupt_manifest_names_recovery_command(tmp_path, embedder):
    settings = Settings(data_dir=str(tmp_path / "data"))
    with RAG(settings, embedder=embedder) as rag:
        assert rag.ingest([(n, t.encode()) for n, t in DOCS.items()]).ok
    manifest = settings.kb_dir / "manifest.sqlite"
    for extra in ("-wal", "-shm"):
        Path(str(manifest) + extra).unlink(missing_ok=True)
    manifest.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        RAG(settings, embedder=embedder)
    assert str(manifest) in str(info.value) and "hoprag reindex" in str(info.value)

    # The CLI says the same in one line, then reindex rebuilds the manifest from Chroma.
    res = _cli("docs", data_dir=tmp_path / "data")
    assert res.returncode == 1 and "hoprag reindex" in res.stderr and "Traceback" not in res.stderr
    res = _cli("reindex", "--json", data_dir=tmp_path / "data")
    assert res.returncode == 0, res.stderr
    with RAG(settings, embedder=embedder) as rag:
        assert sorted(d.source for d in rag.documents()) == sorted(DOCS)
        assert "Eiffel" in rag.retrieve(QUESTION, k=1)[0].chunk.text
        assert check_consistency(rag.store) == []


def test_missing_manifest_is_rebuilt_by_reindex(tmp_path, embedder, caplog):
    settings = Settings(data_dir=str(tmp_path / "data"))
    with RAG(settings, embedder=embedder) as rag:
        assert rag.ingest([(n, t.encode()) for n, t in DOCS.items()]).ok
    for f in settings.kb_dir.glob("manifest.sqlite*"):
        f.unlink()
    with RAG(settings, embedder=embedder) as rag:
        assert "manifest" in caplog.text and "hoprag reindex --kb default" in caplog.text
        # Chunks without a manifest row are invisible: the check says so and names the fix.
        problems = check_consistency(rag.store)
        assert problems and all("hoprag reindex" in p for p in problems)
        report = repair(rag.store)
        assert report["problems"] == [] and sorted(report["restored"]) == sorted(DOCS)
        assert sorted(d.source for d in rag.documents()) == sorted(DOCS)
        assert "Eiffel" in rag.retrieve(QUESTION, k=1)[0].chunk.text
