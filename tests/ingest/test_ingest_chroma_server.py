"""Ingest, search and delete against a real ``chroma run`` server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.pipeline import RAG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.skip(f"no chroma CLI at {chroma}")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = open(path / "server.log", "wb")
    proc = subprocess.Popen(
        [str(chroma), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path / "db")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chroma run did not start: {(path / 'server.log').read_text(errors='replace')[-500:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_ingest_search_delete_on_chroma_server(chroma_url, settings, embedder, good_files):
    with RAG(settings.replace(chroma_url=chroma_url, kb="remote"), embedder=embedder) as rag:
        assert rag.store.chroma_url == chroma_url
        report = rag.ingest([good_files["pdf"], good_files["markdown"]])
        assert [f.status for f in report.files] == ["added", "added"]
        assert rag.store.count() == sum(f.chunks for f in report.files)
        assert rag.store.bm25_search("Rosa Quispe", 1)[0].chunk.page == 3
        dense = rag.store.query(embedder.embed(["How often are llamas sheared?"])[0], 1)
        assert "Shear" in dense[0].chunk.text
        assert rag.ingest([good_files["pdf"]]).files[0].status == "unchanged"
        rag.delete("llamas.md")
        assert [d.source for d in rag.documents()] == [str(good_files["pdf"].resolve())]
        assert rag.store.bm25_search("llamas", 3) == []
        assert set(rag.store.collection.get(include=[])["ids"]) == set(rag.store.bm25_index().ids)
    # The chunks live in the server, not in the local data dir.
    assert not (Path(settings.data_dir) / "index" / "chroma").exists()
