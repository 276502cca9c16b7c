"""OpenAICompatEngine against a real llama.cpp server (llama-cpp-python) on 127.0.0.1 serving the Gemma GGUF.

Two questions in one conversation: the session keeps them on one slot
(``id_slot``), ``cache_prompt`` is sent, and the follow-up's prompt starts with
the first prompt's instructions and passages, so the server prefills only the
rest. llama-cpp-python's server reports no cached-token count in its replies
(no ``prompt_tokens_details``, no ``timings``): the reuse is read from its own
log line ``Llama.generate: N prefix-match hit``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from servers import free_port, serving

from rag.engines.base import generate
from rag.engines.openai_compat import OpenAICompatEngine
from rag.generate import STOP, build_prompt
from rag.types import Chunk, Hit

pytestmark = pytest.mark.slow

HITS = [
    Hit(Chunk("c0", "d0", "Sea otters use stones as tools to crack open shellfish.", "otters.md"), 1.0),
    Hit(Chunk("c1", "d1", "Mount Etna in Sicily is one of the most active volcanoes in Europe.", "etna.md"), 0.9),
    Hit(Chunk("c2", "d2", "Sourdough bread is leavened by wild yeast and lactic acid bacteria.", "bread.md"), 0.8),
]
Q1, Q2 = "What do sea otters use stones for?", "Where is Mount Etna?"


@pytest.fixture(scope="module")
def llama_server(base_settings, tmp_path_factory):
    """``python -m llama_cpp.server`` on a free loopback port; stopped at teardown."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama-cpp-python is not installed: `make install` builds it (extra `server`, "
            "CMAKE_ARGS in the Makefile)"
        )
    from rag.models import gguf_file

    model = gguf_file(base_settings.models_dir)
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    base = f"http://127.0.0.1:{port}"
    with serving(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "gemma",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2", "--verbose", "True"],
        ready_url=base + "/v1/models", log_path=log_path, timeout_s=180, what="llama.cpp server",
    ):
        yield base + "/v1", log_path


def _prefix_hits(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"Llama\.generate: (\d+) prefix-match hit", text)]


@pytest.mark.parametrize("api", ["completions"])
def test_follow_up_in_a_conversation_reuses_the_server_prompt_cache(llama_server, api):
    url, log_path = llama_server
    engine = OpenAICompatEngine(url, "gemma", api=api, timeout_s=300)
    try:
        first = build_prompt(Q1, HITS[:2])
        text1, usage1 = generate(engine, first, max_tokens=8, stop=STOP, session="conversation-1")
        before = len(log_path.read_text())
        follow = build_prompt(Q2, HITS, [(Q1, text1 or "Stones.")])
        text2, usage2 = generate(engine, follow, max_tokens=8, stop=STOP, session="conversation-1")
    finally:
        engine.close()
    assert usage1.total_s > 0 and usage2.ttft_s <= usage2.total_s
    # What the server itself says it reused for the follow-up.
    reused = _prefix_hits(Path(log_path).read_text()[before:])
    assert reused and reused[-1] > 0, Path(log_path).read_text()[before:][-2000:]
    # The engine reports the server's own count when it sends one (llama-server's timings.cache_n,
    # vLLM's prompt_tokens_details); llama-cpp-python's server sends none, so it reports 0, never a guess.
    assert usage2.cached_tokens in (0, reused[-1])
