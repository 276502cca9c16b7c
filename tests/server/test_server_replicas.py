"""Two ``hoprag serve`` replicas, each with its own data dir, over one real ``chroma run`` server (issue 22).

A file uploaded through replica A is answerable through replica B within 10 s (dense,
hybrid and hops retrieval, and an extractive answer: no LLM), and a delete through A
disappears from B; a knowledge base created on A is listed by B, and one deleted on A (and
made anew) is gone from B (and served anew), though B had it open.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from servers import chroma_serving, free_port, serving, wait_job

VISIBLE_WITHIN_S = 10.0
OKAPI = (b"# Okapis\n\nThe okapi lives in the Ituri rainforest of Congo. Its striped legs look like a zebra's, "
         b"but Kwame Mensah showed in 1901 that the okapi is a relative of the giraffe.\n")
QUESTION = "Which animal lives in the Ituri rainforest?"
HOPRAG = Path(sys.executable).with_name("hoprag")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        chroma_url = stack.enter_context(chroma_serving(tmp))
        clients = []
        for name in ("a", "b"):
            port = free_port()
            env = dict(os.environ, HOPRAG_DATA_DIR=str(tmp / name), HOPRAG_CHROMA_URL=chroma_url,
                       HOPRAG_ANSWER_MODE="extractive", HOPRAG_ABSTAIN_THRESHOLD="0")
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(serving(
                [str(HOPRAG), "serve", "--port", str(port)], ready_url=f"{url}/health",
                log_path=tmp / f"serve-{name}.log", timeout_s=120, what=f"hoprag serve ({name})", env=env, cwd=tmp,
            ))
            clients.append(stack.enter_context(httpx.Client(base_url=f"{url}/v1", timeout=120)))
        yield clients


def _retrieve(http: httpx.Client, strategy: str) -> list[dict]:
    resp = http.post("/kbs/default/retrieve", json={"query": QUESTION, "k": 3, "strategy": strategy})
    assert resp.status_code == 200, resp.text
    return resp.json()["hits"]


def _within(seconds: float, check) -> float:
    """Seconds until ``check()`` is true (fails past ``seconds``)."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < seconds, f"not visible within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - t0


def test_a_document_uploaded_through_one_replica_is_answered_by_the_other(replicas):
    a, b = replicas
    for strategy in ("single", "hybrid", "hops"):  # B loads its embedder and builds its (empty) indexes first
        assert _retrieve(b, strategy) == []
    job = wait_job(a, a.post("/kbs/default/documents", files=[("files", ("okapi.md", OKAPI, "text/markdown"))]).json())
    assert job["status"] == "done" and job["files"][0]["status"] == "added", job

    def okapi(strategy: str) -> bool:
        hits = _retrieve(b, strategy)
        return bool(hits) and hits[0]["source"] == "okapi.md" and "Ituri" in hits[0]["text"]

    seen = _within(VISIBLE_WITHIN_S, lambda: okapi("single"))
    print(f"replica B answered from A's upload after {seen:.2f} s")
    assert okapi("hybrid") and okapi("hops")
    assert [d["source"] for d in b.get("/kbs/default/documents").json()["data"]] == ["okapi.md"]
    answer = b.post("/kbs/default/ask", json={"question": QUESTION, "conversation": [], "stream": False}).json()
    assert answer["mode"] == "extractive" and answer["citations"][0]["source"] == "okapi.md", answer
    assert "Ituri" in answer["answer"]

    doc_id = a.get("/kbs/default/documents").json()["data"][0]["doc_id"]
    assert a.delete(f"/kbs/default/documents/{doc_id}").status_code == 200
    gone = _within(VISIBLE_WITHIN_S, lambda: b.get("/kbs/default/documents").json()["data"] == [])
    print(f"replica B dropped A's delete after {gone:.2f} s")
    for strategy in ("single", "hybrid", "hops"):
        assert all(h["source"] != "okapi.md" for h in _retrieve(b, strategy)), strategy


def test_a_knowledge_base_created_on_one_replica_is_listed_by_the_other(replicas):
    a, b = replicas
    assert a.post("/kbs", json={"name": "shared"}).status_code == 201
    assert "shared" in {kb["name"] for kb in b.get("/kbs").json()["data"]}
    assert b.get("/kbs/shared/documents").json()["data"] == []


def test_a_knowledge_base_deleted_on_one_replica_is_gone_from_the_other_and_can_be_made_anew(replicas):
    a, b = replicas

    def upload(http: httpx.Client) -> None:
        job = wait_job(http, http.post("/kbs/brief/documents",
                                       files=[("files", ("okapi.md", OKAPI, "text/markdown"))]).json())
        assert job["status"] == "done" and job["files"][0]["status"] == "added", job

    def b_sources() -> list[str] | None:
        resp = b.get("/kbs/brief/documents")
        return [d["source"] for d in resp.json()["data"]] if resp.status_code == 200 else None

    assert a.post("/kbs", json={"name": "brief"}).status_code == 201
    upload(a)
    _within(VISIBLE_WITHIN_S, lambda: b_sources() == ["okapi.md"])  # B has it open now
    assert a.delete("/kbs/brief").status_code == 200
    _within(VISIBLE_WITHIN_S, lambda: b_sources() is None)  # 404 on B, not an error from a stale handle
    assert "brief" not in {kb["name"] for kb in b.get("/kbs").json()["data"]}
    # Made anew through A under the same name: B serves the new one, not the deleted one's handles.
    assert a.post("/kbs", json={"name": "brief"}).status_code == 201
    assert _within(VISIBLE_WITHIN_S, lambda: b_sources() == []) >= 0
    upload(a)
    _within(VISIBLE_WITHIN_S, lambda: b_sources() == ["okapi.md"])
    hits = b.post("/kbs/brief/retrieve", json={"query": QUESTION, "k": 1}).json()["hits"]
    assert hits and hits[0]["source"] == "okapi.md"
