"""Users, roles and grants through the real API (uvicorn on loopback, httpx): 403 for a role too low, 404 for a
knowledge base without a grant (exactly as for one that does not exist), revoked keys, the static key, rate limits,
the audit log, and ``hoprag serve`` refusing a non-loopback bind without users."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import httpx
import pytest
from fastapi import Depends, Request
from kb_fixture import build_kb
from servers import free_port, serving_app, wait_job

from rag import RAG, Settings
from rag.auth import Audit, Users
from rag.auth.keys import key_id_of
from rag.server import create_app

STATIC = "static-admin-key-0123"
FOX = b"# Foxes\n\nThe arctic fox turns white in winter. It hunts lemmings under the snow.\n"
HOPRAG = [sys.executable, "-c", "from rag.cli import main; main()"]


def add_whoami(app) -> None:
    """A route added from outside rag.server, as another feature would: it reads request.state.user."""

    @app.get("/v1/whoami")
    def whoami(request: Request, _=Depends(app.state.authorize)) -> dict:
        return {"user": request.state.user}


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("users-server")
    settings = build_kb(tmp / "data", embedder, answer_mode="extractive", abstain_threshold=0.0)
    users = Users(settings.data_dir)
    keys = {}
    for name, role in (("root", "admin"), ("ed", "editor"), ("rd", "reader"), ("nog", "reader")):
        keys[name] = users.add(name, role)[1]
    users.grant("ed", "default")
    users.grant("rd", "default")
    with RAG(settings, embedder=embedder) as rag:
        app = create_app(rag, api_key=STATIC)
        add_whoami(app)
        with serving_app(app) as url:
            clients = {name: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
                       for name, key in {**keys, "static": STATIC}.items()}
            assert clients["root"].post("/kbs", json={"name": "secret"}).status_code == 201
            yield SimpleNamespace(url=url, users=users, keys=keys, http=clients, settings=settings)
            for c in clients.values():
                c.close()


def error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


def test_a_reader_cannot_upload_or_delete_but_can_ask(server):
    rd = server.http["rd"]
    files = [("files", ("fox.md", FOX, "text/markdown"))]
    error(rd.post("/kbs/default/documents", files=files), 403, "forbidden")
    error(rd.post("/kbs/default/documents", json={"url": "http://127.0.0.1:9/x"}), 403, "forbidden")
    error(rd.delete("/kbs/default/documents/otters.md"), 403, "forbidden")
    error(rd.delete("/kbs/default"), 403, "forbidden")
    error(rd.post("/kbs", json={"name": "mine"}), 403, "forbidden")
    assert "otters.md" in [d["source"].rsplit("/", 1)[-1] for d in rd.get("/kbs/default/documents").json()["data"]]
    assert rd.post("/kbs/default/retrieve", json={"query": "sea otters stones"}).json()["hits"]
    assert rd.post("/kbs/default/ask", json={"question": "What do sea otters use stones for?"}).status_code == 200
    chat = rd.post("/chat/completions", json={"model": "hoprag-default",
                                              "messages": [{"role": "user", "content": "What do otters eat?"}]})
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"]


def test_an_editor_uploads_and_deletes_in_the_kbs_granted_only(server):
    ed = server.http["ed"]
    job = ed.post("/kbs/default/documents", files=[("files", ("fox.md", FOX, "text/markdown"))])
    assert job.status_code == 202, job.text
    assert wait_job(ed, job.json())["status"] == "done"
    error(server.http["nog"].get(f"/jobs/{job.json()['id']}"), 404, "job_not_found")  # a job of a hidden KB
    deleted = ed.delete("/kbs/default/documents/fox.md")
    assert deleted.status_code == 200, deleted.text
    error(ed.post("/kbs/secret/documents", files=[("files", ("fox.md", FOX, "text/markdown"))]), 404, "kb_not_found")
    error(ed.post("/kbs", json={"name": "mine"}), 403, "forbidden")
    error(ed.delete("/kbs/default"), 403, "forbidden")
    records = Audit(server.settings.data_dir).read(actor="ed")
    ingest = next(r for r in records if r["action"] == "ingest")
    assert ingest["target"] == "default" and ingest["sources"] == ["fox.md"] and ingest["source"] == "127.0.0.1"
    assert any(r["action"] == "document_delete" and r["target"] == "default" for r in records)
    assert any(r["action"] == "kb_create" and r["target"] == "secret" and r["actor"] == "root"
               for r in Audit(server.settings.data_dir).read())


def test_without_a_grant_a_kb_answers_exactly_like_one_that_does_not_exist(server):
    nog = server.http["nog"]
    requests = [
        ("GET", "/kbs/{kb}/documents", None),
        ("POST", "/kbs/{kb}/retrieve", {"query": "otters"}),
        ("POST", "/kbs/{kb}/ask", {"question": "otters?"}),
        ("POST", "/kbs/{kb}/documents", {"url": "http://127.0.0.1:9/x"}),
        ("DELETE", "/kbs/{kb}/documents/otters.md", None),
        ("DELETE", "/kbs/{kb}", None),
    ]
    for method, path, body in requests:
        hidden = nog.request(method, path.format(kb="default"), json=body)
        absent = nog.request(method, path.format(kb="no-such-kb"), json=body)
        assert hidden.status_code == absent.status_code == 404, (path, hidden.text)
        assert hidden.text.replace("default", "X") == absent.text.replace("no-such-kb", "X"), path
    for mid in ("hoprag-default", "hoprag-secret"):
        hidden = nog.post("/chat/completions", json={"model": mid, "messages": [{"role": "user", "content": "hi"}]})
        assert error(hidden, 404, "model_not_found")["message"].endswith("this server has: ")
        error(nog.get(f"/models/{mid}"), 404, "model_not_found")
    assert nog.get("/models").json()["data"] == [] and nog.get("/kbs").json()["data"] == []


def test_models_and_kbs_list_only_what_the_key_may_read(server):
    def listed(who: str) -> tuple[list[str], list[str]]:
        http = server.http[who]
        return [m["id"] for m in http.get("/models").json()["data"]], [k["name"] for k in http.get("/kbs").json()["data"]]

    assert listed("rd") == (["hoprag-default"], ["default"])
    assert listed("ed") == (["hoprag-default"], ["default"])
    assert listed("root") == (["hoprag-default", "hoprag-secret"], ["default", "secret"])
    assert listed("static") == listed("root")  # the api_key setting's key is an admin's


def test_keys_are_required_and_a_revoked_key_fails_at_once(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {server.keys['rd']}x"}):
        error(httpx.get(f"{server.url}/models", headers=headers, timeout=30), 401, "invalid_api_key")
    key = server.users.new_key("rd", label="laptop")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        assert http.get("/models").status_code == 200
        server.users.revoke_key("rd", key_id_of(key))
        error(http.get("/models"), 401, "invalid_api_key")
    last_used = {k.key_id: k.last_used for k in server.users.keys("rd")}
    assert last_used[key_id_of(key)] is not None


def test_handlers_see_the_callers_name(server):
    assert server.http["ed"].get("/whoami").json() == {"user": "ed"}
    assert server.http["static"].get("/whoami").json() == {"user": "api_key"}


def test_each_key_is_rate_limited_with_429_and_retry_after(tmp_path, embedder):
    settings = Settings(data_dir=str(tmp_path / "data"), rate_limit_per_minute=3)
    users = Users(settings.data_dir)
    _, a = users.add("a", "admin")
    _, b = users.add("b", "admin")
    with RAG(settings, embedder=embedder) as rag, serving_app(create_app(rag)) as url:
        def get(key: str) -> httpx.Response:
            return httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=30)

        assert [get(a).status_code for _ in range(3)] == [200, 200, 200]
        limited = get(a)
        error(limited, 429, "rate_limit_exceeded")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert get(b).status_code == 200


def test_single_user_mode_until_a_user_is_added(tmp_path, embedder):
    settings = Settings(data_dir=str(tmp_path / "data"))
    with RAG(settings, embedder=embedder) as rag:
        app = create_app(rag)
        add_whoami(app)
        with serving_app(app) as url:
            assert httpx.get(f"{url}/models", timeout=30).status_code == 200
            assert httpx.get(f"{url}/whoami", timeout=30).json() == {"user": None}
            _, key = Users(settings.data_dir).add("root", "admin")
            error(httpx.get(f"{url}/models", timeout=30), 401, "invalid_api_key")
            assert httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200


def test_serve_on_a_non_loopback_address_without_users_refuses_in_one_line(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPRAG_")}
    env["HOPRAG_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([*HOPRAG, "serve", "--host", "0.0.0.0", "--port", str(port)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "hoprag users add NAME --admin" in lines[0] and "0.0.0.0" in lines[0], done.stderr
    assert done.stdout == ""
    with socket.socket() as s:  # nothing was left listening
        assert s.connect_ex(("127.0.0.1", port)) != 0
