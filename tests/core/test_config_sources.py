"""Where settings come from (issue 19): user data dir by default, config files, .env, OpenAI's variables, warnings."""

from __future__ import annotations

import http.server
import json
import logging
import os
import threading
from pathlib import Path

import pytest

from rag.config import Settings, load_with_origins, mask


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No HOPRAG_*/OPENAI_* variables, XDG dirs under tmp_path, an empty working directory."""
    for key in list(os.environ):
        if key.startswith(("HOPRAG_", "OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_data_lives_in_the_user_data_dir_whatever_the_working_dir(clean_env, monkeypatch):
    assert Settings().data_dir == str(clean_env / "share" / "hoprag")
    monkeypatch.chdir(clean_env)
    assert Settings.load().data_dir == str(clean_env / "share" / "hoprag")
    assert Settings.load(data_dir="elsewhere").data_dir == "elsewhere"


def test_sources_in_order_with_their_origins(clean_env, monkeypatch):
    user = clean_env / "config" / "hoprag" / "hoprag.toml"
    user.parent.mkdir(parents=True)
    user.write_text("top_k = 2\nhops = 3\nkb = \"user\"\nchunk_tokens = 150\n")
    Path("hoprag.toml").write_text("[hoprag]\ntop_k = 4\nkb = \"local\"\nrrf_k = 7\n")
    Path(".env").write_text("HOPRAG_KB=dotenv\nHOPRAG_RRF_K=9\n# a comment\nHOPRAG_TEMPERATURE=0.5\n")
    monkeypatch.setenv("HOPRAG_TEMPERATURE", "0.25")
    settings, origins = load_with_origins(top_k=6)
    assert settings.chunk_tokens == 150 and origins["chunk_tokens"] == f"file {user}"
    assert settings.hops == 3  # the user file, not overridden
    assert settings.kb == "dotenv" and origins["kb"].startswith(".env") and origins["kb"].endswith("HOPRAG_KB")
    assert settings.rrf_k == 9  # .env over ./hoprag.toml
    assert settings.temperature == 0.25 and origins["temperature"] == "environment HOPRAG_TEMPERATURE"
    assert settings.top_k == 6 and origins["top_k"] == "command line / caller"
    assert "min_score" not in origins  # a default
    # HOPRAG_CONFIG names the one file instead of both
    only = clean_env / "only.toml"
    only.write_text("hops = 5\n")
    monkeypatch.setenv("HOPRAG_CONFIG", str(only))
    assert (Settings.load().hops, Settings.load().chunk_tokens) == (5, 200)


def test_openai_variables_are_fallbacks_and_the_embedder_has_its_own_key(clean_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0000000000001234")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    s, origins = load_with_origins()
    assert (s.llm_api_key, s.llm_base_url, s.engine) == ("sk-openai-0000000000001234", "http://127.0.0.1:9/v1", "local")
    assert origins["llm_api_key"] == "environment OPENAI_API_KEY (fallback)"
    assert s.embed_api_key == ""  # never the LLM's key
    monkeypatch.setenv("HOPRAG_LLM_API_KEY", "hoprag-key")
    assert Settings.load().llm_api_key == "hoprag-key"
    monkeypatch.delenv("OPENAI_BASE_URL")
    chosen = Settings.load(engine="openai", llm_model="gpt-4o-mini")
    assert chosen.llm_base_url == "https://api.openai.com/v1"
    assert mask("llm_api_key", "sk-openai-0000000000001234") == "****1234" and mask("top_k", 3) == 3


def test_the_embeddings_server_gets_the_embed_key_not_the_llm_key(clean_env):
    """A real loopback embeddings endpoint records the Authorization header it is sent."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = [{"object": "embedding", "index": i, "embedding": [1.0, 0.0]} for i in range(len(body["input"]))]
            reply = json.dumps({"object": "list", "data": data, "model": "e",
                                "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from rag.embed import make_embedder

        settings = Settings(embed_base_url=f"http://127.0.0.1:{server.server_port}/v1", embedder="openai",
                            embed_model="e", llm_api_key="llm-secret", embed_api_key="embed-secret")
        make_embedder(settings).embed(["hello"])
    finally:
        server.shutdown()
    assert seen == ["Bearer embed-secret"]


def test_an_unknown_variable_warns_with_the_closest_setting(clean_env, monkeypatch, caplog):
    monkeypatch.setenv("HOPRAG_TOPK", "3")
    monkeypatch.setenv("HOPRAG_NOTHING_LIKE_IT", "1")
    with caplog.at_level(logging.WARNING, logger="rag.config"):
        settings = Settings.load()
    assert settings.top_k == 5
    text = caplog.text
    assert "ignoring unknown environment variable HOPRAG_TOPK; did you mean HOPRAG_TOP_K?" in text
    assert "HOPRAG_NOTHING_LIKE_IT; the settings are listed by  hoprag config" in text
