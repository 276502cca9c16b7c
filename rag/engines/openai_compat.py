"""Any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI) through the ``openai`` client."""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Sequence

from rag.config import Settings
from rag.engines.base import ENGINES, LOGPROBS, TEXT
from rag.errors import EngineError, EngineUnavailable
from rag.types import Usage

log = logging.getLogger(__name__)


class OpenAICompatEngine:
    """Streams from ``/v1/chat/completions`` (or ``/v1/completions`` with ``llm_api='completions'``).

    Cached prompt tokens are read from ``usage.prompt_tokens_details.cached_tokens``
    (vLLM, OpenAI) or llama.cpp's ``timings.cache_n``.
    """

    name = "openai"
    capabilities = frozenset({TEXT, LOGPROBS})

    def __init__(
        self, base_url: str, model: str, api_key: str = "", timeout_s: float = 60.0, api: str = "chat", slots: int = 1
    ) -> None:
        import openai

        self._openai = openai
        self.base_url = base_url
        self.model = model
        self.api = api
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0)
        self.slots = max(slots, 1)
        self._slot_of: dict[str, int] = {}
        # api.openai.com refuses unknown request fields; self-hosted servers ignore or use them.
        self._send_cache_hints = "api.openai.com" not in base_url

    def _extra_body(self, session: str | None) -> dict[str, Any]:
        # llama.cpp: reuse the slot's cached prefix and keep a conversation on one slot.
        if not self._send_cache_hints:
            return {}
        body: dict[str, Any] = {"cache_prompt": True}
        if session is not None:
            body["id_slot"] = self._slot_of.setdefault(session, len(self._slot_of) % self.slots)
        return body

    def _errors(self, exc: Exception) -> EngineError:
        if isinstance(exc, (self._openai.APIConnectionError, self._openai.APITimeoutError)):
            return EngineUnavailable(
                f"LLM server {self.base_url} is unreachable or timed out: check HOPRAG_LLM_BASE_URL "
                f"and that the server is running ({type(exc).__name__})"
            )
        return EngineError(f"LLM server {self.base_url} failed: {exc}")

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        session: str | None = None,
    ) -> Iterator[str | Usage]:
        t0 = time.perf_counter()
        ttft = 0.0
        usage_obj: Any = None
        extra = self._extra_body(session)
        common = dict(
            model=self.model,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=extra,
        )
        if stop:
            common["stop"] = list(stop)[:4]
        try:
            if self.api == "chat":
                chunks = self.client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **common)
            else:
                chunks = self.client.completions.create(prompt=prompt, **common)
            for chunk in chunks:
                if getattr(chunk, "usage", None):
                    usage_obj = chunk
                for choice in chunk.choices or []:
                    piece = choice.delta.content if self.api == "chat" else choice.text
                    if piece:
                        if not ttft:
                            ttft = time.perf_counter() - t0
                        yield piece
        except self._openai.OpenAIError as exc:
            raise self._errors(exc) from exc
        except (ValueError, KeyError, AttributeError) as exc:
            raise EngineError(f"LLM server {self.base_url} sent a reply hoprag cannot read: {exc}") from exc
        yield _usage(usage_obj, ttft, time.perf_counter() - t0)

    def close(self) -> None:
        self.client.close()


def _usage(chunk: Any, ttft: float, total: float) -> Usage:
    if chunk is None:
        return Usage(ttft_s=ttft, total_s=total)
    u = chunk.usage
    cached = 0
    details = getattr(u, "prompt_tokens_details", None)
    if details is not None and getattr(details, "cached_tokens", None):
        cached = int(details.cached_tokens)
    timings = (getattr(chunk, "model_extra", None) or {}).get("timings") or {}
    if not cached and timings.get("cache_n"):
        cached = int(timings["cache_n"])
    return Usage(
        prompt_tokens=int(u.prompt_tokens or 0),
        cached_tokens=cached,
        completion_tokens=int(u.completion_tokens or 0),
        ttft_s=ttft,
        total_s=total,
    )


@ENGINES.register("openai")
def _make(settings: Settings) -> OpenAICompatEngine:
    return OpenAICompatEngine(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        api=settings.llm_api,
    )
