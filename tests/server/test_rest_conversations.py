"""``/v1/kbs/{kb}/ask`` with ``conversation_id`` (issue 21): the saved store's history and turns, per user,
through a real server on loopback (uvicorn, httpx). The ``conversation`` list of earlier turns keeps working."""

from __future__ import annotations

import json

import httpx
import pytest
from kb_fixture import OTTER_QUESTION, build_kb
from servers import serving_app

from rag import RAG
from rag.auth import Users
from rag.server import create_app


@pytest.fixture
def served(tmp_path, embedder):
    settings = build_kb(tmp_path / "data", embedder, answer_mode="extractive", abstain_threshold=0.0)

    def serve(with_users: bool = False):
        keys = {}
        if with_users:
            users = Users(settings.data_dir)
            for name in ("ann", "bob"):
                keys[name] = users.add(name, "reader")[1]
                users.grant(name, "default")
        rag = RAG(settings, embedder=embedder)
        return rag, keys

    return settings, serve


def test_conversation_id_saves_turns_and_the_old_contract_still_works(served):
    settings, serve = served
    rag, _ = serve()
    with rag, serving_app(create_app(rag)) as url, httpx.Client(base_url=url, timeout=120) as http:
        first = http.post("/kbs/default/ask", json={"question": OTTER_QUESTION, "conversation_id": "web-1"})
        assert first.status_code == 200, first.text
        with http.stream("POST", "/kbs/default/ask", json={"question": "What do they eat?", "conversation_id": "web-1",
                                                           "stream": True}) as resp:
            events = [line for line in resp.iter_lines() if line.startswith("event: ")]
        assert events[-1] == "event: answer"
        # the old contract: earlier turns in the request, nothing saved
        old = http.post("/kbs/default/ask", json={"question": "And?", "conversation": [
            {"question": OTTER_QUESTION, "answer": first.json()["answer"]}]})
        assert old.status_code == 200 and "citations" in old.json()
        both = http.post("/kbs/default/ask", json={"question": "And?", "conversation_id": "web-1", "conversation": [
            {"question": "q", "answer": "a"}]})
        assert both.status_code == 400 and both.json()["error"]["param"] == "conversation_id"
        empty = http.post("/kbs/default/ask", json={"question": "And?", "conversation_id": ""})
        assert empty.status_code == 422
        # the Python client: the same call as in process
        from rag.client import Client

        remote = Client(url.removesuffix("/v1"), kb="default")
        assert remote.ask("Where is Hekla?", conversation="web-2").citations
        assert [p for p in remote.stream("And Iceland?", conversation="web-2") if not isinstance(p, str)]
    with RAG(settings) as reopened:
        chats = reopened.conversations()
        info = chats.info("web-1")
        assert (info.id, info.title, info.turns, info.owner) == ("web-1", OTTER_QUESTION, 2, "local")
        assert chats.info("web-2").turns == 2
        saved = chats.get("web-1")
        assert saved.turns[0].answer.to_dict()["citations"] == first.json()["citations"]
        assert json.loads(chats.export("web-1", "json"))["turns"][1]["question"] == "What do they eat?"


def test_each_user_has_their_own_conversations(served):
    settings, serve = served
    rag, keys = serve(with_users=True)
    with rag, serving_app(create_app(rag)) as url:
        def ask(who: str, cid: str) -> httpx.Response:
            return httpx.post(f"{url}/kbs/default/ask", json={"question": OTTER_QUESTION, "conversation_id": cid},
                              headers={"Authorization": f"Bearer {keys[who]}"}, timeout=120)

        assert ask("ann", "shared-name").status_code == 200
        refused = ask("bob", "shared-name")
        assert refused.status_code == 400 and "not bob's" in refused.json()["error"]["message"]
        assert ask("bob", "bobs").status_code == 200
    with RAG(settings) as reopened:
        chats = reopened.conversations()
        assert [c.id for c in chats.list(owner="ann")] == ["shared-name"]
        assert [c.id for c in chats.list(owner="bob")] == ["bobs"]
