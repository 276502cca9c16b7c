"""The REST API and its error shapes on a real ``hoprag serve`` process, driven with httpx and the openai client.

The server runs the CLI command on a free loopback port over a throwaway data
dir; answers are extractive (quoted evidence, no LLM) so the module stays
fast: the chat path with the real LLM is tested in test_server.py.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest
from fakes import loopback_http
from kb_fixture import KB_DOCS
from servers import free_port, serving, wait_job

KEY = "rest-key-1"
OTHER_KEY = "rest-key-2"
AUTH = {"Authorization": f"Bearer {KEY}"}
FOX = b"# Foxes\n\nThe arctic fox turns white in winter. It hunts lemmings under the snow.\n"


def hoprag_command() -> list[str]:
    exe = Path(sys.executable).with_name("hoprag")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rag.cli"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rest")
    port = free_port()
    env = dict(os.environ, HOPRAG_DATA_DIR=str(tmp / "data"), HOPRAG_ANSWER_MODE="extractive",
               HOPRAG_ABSTAIN_THRESHOLD="0", HOPRAG_API_KEY=f"{KEY},{OTHER_KEY}", HOPRAG_ALLOW_PRIVATE_URLS="true", HOPRAG_MAX_FILE_MB="1")
    url = f"http://127.0.0.1:{port}"
    with serving(
        [*hoprag_command(), "serve", "--port", str(port), "--max-upload-mb", "8"],
        ready_url=f"{url}/health", log_path=tmp / "serve.log", timeout_s=120, what="hoprag serve", env=env, cwd=tmp,
    ):
        with httpx.Client(base_url=f"{url}/v1", headers=AUTH, timeout=120) as http:
            yield SimpleNamespace(url=url, http=http, tmp=tmp)


def assert_openai_error(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"message", "type", "code"} <= set(err) and err["message"], err
    if code:
        assert err["code"] == code, err
    return err


def test_kb_lifecycle_upload_job_ask_cites_the_new_file(server):
    http = server.http
    created = http.post("/kbs", json={"name": "animals"})
    assert created.status_code == 201 and created.json()["name"] == "animals"
    assert {"default", "animals"} <= {kb["name"] for kb in http.get("/kbs").json()["data"]}
    assert "hoprag-animals" in [m["id"] for m in http.get("/models").json()["data"]]

    files = [("files", ("fox.md", FOX, "text/markdown")),
             ("files", ("otters.md", (KB_DOCS / "otters.md").read_bytes(), "text/markdown"))]
    resp = http.post("/kbs/animals/documents", files=files)
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] in ("queued", "running", "done") and job["id"].startswith("job-")
    assert [f["source"] for f in job["files"]] == ["fox.md", "otters.md"]
    job = wait_job(http, job)
    assert job["status"] == "done", job
    assert all(f["status"] == "added" and f["chunks"] >= 1 and not f["reason"] for f in job["files"]), job

    docs = http.get("/kbs/animals/documents").json()["data"]
    assert sorted(d["source"] for d in docs) == ["fox.md", "otters.md"]

    hits = http.post("/kbs/animals/retrieve", json={"query": "What colour is the arctic fox in winter?", "k": 1,
                                                    "filters": None}).json()["hits"]
    assert len(hits) == 1 and set(hits[0]) >= {"chunk_id", "source", "page", "score", "text"}
    assert hits[0]["source"] == "fox.md" and "white" in hits[0]["text"]

    answer = http.post("/kbs/animals/ask", json={"question": "What colour does the arctic fox turn in winter?",
                                                 "conversation": [], "stream": False}).json()
    assert answer["citations"] and answer["citations"][0]["source"] == "fox.md", answer
    assert "white" in answer["answer"] and answer["mode"] == "extractive"

    # the same through the OpenAI chat endpoint, with the KB as the model
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=OTHER_KEY, max_retries=0, timeout=120)
    chat = client.chat.completions.create(
        model="hoprag-animals", messages=[{"role": "user", "content": "What does the arctic fox hunt?"}])
    assert chat.model_extra["sources"][0]["source"] == "fox.md"
    assert "Sources:" not in chat.choices[0].message.content  # structured only, unless asked

    fox = next(d for d in docs if d["source"] == "fox.md")
    removed = http.delete(f"/kbs/animals/documents/{fox['doc_id']}").json()
    assert removed["deleted"] == fox["doc_id"] and removed["source"] == "fox.md"
    assert [d["source"] for d in http.get("/kbs/animals/documents").json()["data"]] == ["otters.md"]
    assert_openai_error(http.delete(f"/kbs/animals/documents/{fox['doc_id']}"), 404, "document_not_found")

    assert http.delete("/kbs/animals").json() == {"name": "animals", "deleted": True}
    assert "animals" not in {kb["name"] for kb in http.get("/kbs").json()["data"]}
    assert_openai_error(http.get("/kbs/animals/documents"), 404, "kb_not_found")


def test_ask_streams_server_sent_events_with_a_conversation(server):
    http = server.http
    job = wait_job(http, http.post("/kbs/default/documents", files=[
        ("files", ("volcanoes.md", (KB_DOCS / "volcanoes.md").read_bytes(), "text/markdown"))]).json())
    assert job["status"] == "done", job
    body = {"question": "Which volcano erupted in 2010?", "conversation": [
        {"question": "Where is Iceland?", "answer": "On the Mid-Atlantic Ridge [1]."}], "stream": True}
    events: list[tuple[str, dict]] = []
    with http.stream("POST", "/kbs/default/ask", json=body) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line[5:])))
    assert [e for e, _ in events][-1] == "answer"
    answer = events[-1][1]
    assert answer["citations"][0]["source"] == "volcanoes.md" and "Eyjafjallajokull" in answer["answer"]
    streamed = "".join(d["text"] for e, d in events if e == "token")
    assert streamed == answer["answer"] or not streamed


def test_url_upload_ingests_the_page(server):
    page = server.tmp / "site"
    page.mkdir()
    (page / "lynx.html").write_text(
        "<html><head><title>Lynx</title></head><body><h1>Lynx</h1><p>The Eurasian lynx hunts roe deer in the "
        "forests of Europe. Its ears end in black tufts.</p></body></html>", encoding="utf-8")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(page), **kw)  # noqa: E731
    with loopback_http(handler) as base:
        url = f"{base}/lynx.html"
        resp = server.http.post("/kbs/default/documents", json={"url": url})
        assert resp.status_code == 202, resp.text
        job = wait_job(server.http, resp.json())
        assert job["status"] == "done" and job["files"][0]["source"] == url and job["files"][0]["chunks"] >= 1, job
        hits = server.http.post("/kbs/default/retrieve", json={"query": "What does the lynx hunt?", "k": 1}).json()
        assert hits["hits"][0]["source"] == url


def test_errors_are_openai_shaped(server):
    http, v1 = server.http, f"{server.url}/v1"
    # 401: no key, a wrong key
    assert_openai_error(httpx.get(f"{v1}/kbs", timeout=30), 401, "invalid_api_key")
    assert_openai_error(httpx.get(f"{v1}/models", headers={"Authorization": "Bearer nope"}, timeout=30), 401)
    # 404: unknown KB, job, endpoint; unknown model through the official client
    assert_openai_error(http.get("/kbs/nope/documents"), 404, "kb_not_found")
    assert_openai_error(http.get("/jobs/job-0000"), 404, "job_not_found")
    assert_openai_error(http.get("/no/such/endpoint"), 404)
    client = openai.OpenAI(base_url=v1, api_key=KEY, max_retries=0, timeout=60)
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["code"] == "model_not_found" and "hoprag-default" in err.value.body["message"]
    # 413: a declared body over the limit, refused before it is read
    assert_openai_error(http.post("/kbs/default/retrieve", content=b"x" * (5 * 2**20),
                                  headers={"content-type": "application/json"}), 413, "request_too_large")
    # 422: a well-formed body with a bad field
    err422 = assert_openai_error(http.post("/kbs/default/retrieve", json={"query": "x", "k": 0}), 422, "invalid_value")
    assert err422["param"] == "k"
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="hoprag-default", messages=[])
    # 400: refused OpenAI features
    for extra in ({"tools": [{"type": "function", "function": {"name": "f"}}]},
                  {"response_format": {"type": "json_object"}}, {"n": 2}):
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="hoprag-default", messages=[{"role": "user", "content": "hi"}],
                                           **extra)
        assert bad.value.body["code"] == "unsupported_parameter" and bad.value.body["param"] == next(iter(extra))
    assert httpx.get(f"{server.url}/docs", timeout=30).status_code == 200
    assert "/v1/kbs/{kb}/documents" in httpx.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]


def test_a_2gb_upload_is_refused_before_it_is_read(server):
    """A chunked body (no Content-Length) is counted as it arrives and cut off at the limit (8 MB here)."""
    sent = 0
    block = b"\0" * 2**20

    def body():
        nonlocal sent
        yield b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="huge.txt"\r\n\r\n'
        for _ in range(2048):  # 2 GB of one file's content
            sent += len(block)
            yield block

    headers = {**AUTH, "content-type": "multipart/form-data; boundary=xyz"}
    resp = httpx.post(f"{server.url}/v1/kbs/default/documents", content=body(), headers=headers, timeout=120)
    assert_openai_error(resp, 413, "request_too_large")
    assert sent < 200 * 2**20, f"the server read {sent / 2**20:.0f} MB before refusing"
    # and a declared 2 GB body is refused without reading any of it
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=30) as sock:
        sock.sendall(b"POST /v1/kbs/default/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
                     + b"\r\nContent-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 2147483648\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):  # the server answers and closes
            reply += chunk
        reply = reply.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413") and '"code": "request_too_large"' in reply, reply


def test_bad_input_is_refused_with_a_reason(server):
    http = server.http
    for name in ("../evil.md", "a/../../b.md", "..", "/etc/passwd"):
        resp = http.post("/kbs/default/documents", files=[("files", (name, b"hello", "text/plain"))])
        assert_openai_error(resp, 400, "invalid_filename")
    # httpx would percent-encode a NUL in a file name: send the raw bytes
    raw = (b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="bad\x00.md"\r\n\r\nhello\r\n'
           b"--xyz--\r\n")
    resp = http.post("/kbs/default/documents", content=raw,
                     headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert_openai_error(resp, 400, "invalid_filename")
    for name in ("a/b", "../x", "x" * 60, ""):
        resp = http.post("/kbs", json={"name": name})
        assert resp.status_code in (400, 422), (name, resp.text)
        assert_openai_error(resp, resp.status_code)
    assert_openai_error(http.get("/kbs/a%2Fb/documents"), 404)
    assert_openai_error(http.post("/kbs", content=b'{"name": "x",', headers={"content-type": "application/json"}),
                        400, "invalid_json")
    assert_openai_error(http.post("/chat/completions", content=b"{not json",
                                  headers={"content-type": "application/json"}), 400, "invalid_json")
    assert_openai_error(http.post("/kbs/default/documents", content=b'{"url": ',
                                  headers={"content-type": "application/json"}), 400, "invalid_json")
    assert_openai_error(http.post("/kbs/default/documents", json={"url": "file:///etc/passwd"}), 400, "invalid_url")
    assert_openai_error(http.post("/kbs/default/documents", files=[("other", ("x.md", b"x", "text/plain"))]), 400,
                        "no_files")
    # a file over max_file_mb (1 MB here) fails in its job with the reason, the server stays up
    job = wait_job(http, http.post("/kbs/default/documents",
                                   files=[("files", ("big.txt", b"a " * 2**20, "text/plain"))]).json())
    assert job["status"] == "failed" and "MB" in job["files"][0]["reason"], job
    assert_openai_error(http.delete("/kbs/default"), 409, "kb_in_use")
