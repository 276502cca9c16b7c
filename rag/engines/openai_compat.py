"""Any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI) through the ``openai`` client."""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Sequence

from rag.config import Settings
from rag.engines.base import ENGINES, PromptLike, completion_text, match_candidates, provides
from rag.errors import EngineError, EngineUnavailable
from rag.types import ChatPrompt, Usage

log = logging.getLogger(__name__)


class OpenAICompatEngine:
    """Streams from ``/v1/chat/completions`` (or ``/v1/completions`` with ``llm_api='completions'``).

    Cached prompt tokens are read from ``usage.prompt_tokens_details.cached_tokens``
    (vLLM, OpenAI) or llama.cpp's ``timings.cache_n``.
    """

    name = "openai"
    takes_messages = True  # per instance: False with api='completions'
    default_max_tokens = 1024  # a real model writes whole paragraphs and lists

    def __init__(
        self, base_url: str, model: str, api_key: str = "", timeout_s: float = 60.0, api: str = "chat", slots: int = 1
    ) -> None:
        import openai

        self._openai = openai
        self.base_url = base_url
        self.model = model
        self.api = api
        self.takes_messages = api == "chat"
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

    def messages(self, prompt: PromptLike) -> list[dict[str, str]]:
        """The chat messages for ``prompt``: a :class:`ChatPrompt`'s own, or completion text as one user message."""
        if isinstance(prompt, ChatPrompt):
            return prompt.to_list()
        return [{"role": "user", "content": completion_text(prompt, self.name)}]

    def stream(
        self,
        prompt: PromptLike,
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
                chunks = self.client.chat.completions.create(messages=self.messages(prompt), **common)
            else:
                chunks = self.client.completions.create(prompt=completion_text(prompt, self.name), **common)
            received = False
            for chunk in chunks:
                received = True
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
        except (ValueError, KeyError, AttributeError, TypeError) as exc:  # a reply of the wrong shape
            raise EngineError(f"LLM server {self.base_url} sent a reply hoprag cannot read: {exc}") from exc
        if not received:
            # A 200 reply that is not an event stream (an HTML page, plain JSON) parses as no events.
            raise EngineError(
                f"LLM server {self.base_url} sent no completion events: is it an OpenAI-compatible server?"
            )
        yield _usage(usage_obj, ttft, time.perf_counter() - t0)

    def close(self) -> None:
        self.client.close()

    # ---- next-token scoring (rerankers) --------------------------------------------
    TOP_LOGPROBS = 20  # vLLM's default max_logprobs; OpenAI's completions API allows 5

    def next_token_logprobs(self, prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        """Log-probability of each candidate as the next token, from the server's ``top_logprobs``
        (matched as :func:`rag.engines.base.match_candidates` says)."""
        try:
            if self.api == "chat":
                reply = self.client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=1,
                    temperature=0.0,
                    logprobs=True,
                    top_logprobs=self.TOP_LOGPROBS,
                    extra_body=self._extra_body(None),
                )
                first = reply.choices[0].logprobs.content[0]
                top = {t.token: float(t.logprob) for t in first.top_logprobs}
                top.setdefault(first.token, float(first.logprob))
            else:
                reply = self.client.completions.create(
                    model=self.model,
                    prompt=prompt,
                    max_tokens=1,
                    temperature=0.0,
                    logprobs=self.TOP_LOGPROBS,
                    extra_body=self._extra_body(None),
                )
                top = {str(k): float(v) for k, v in reply.choices[0].logprobs.top_logprobs[0].items()}
        except self._openai.OpenAIError as exc:
            raise self._errors(exc) from exc
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise EngineError(
                f"LLM server {self.base_url} returned no top logprobs (does it support 'logprobs'?): {exc}"
            ) from exc
        if not top:
            raise EngineError(f"LLM server {self.base_url} returned an empty top_logprobs list")
        return match_candidates(top, candidates)

    def next_token_logprobs_batch(self, prompts: Sequence[str], candidates: Sequence[str]) -> list[dict[str, float]]:
        """:meth:`next_token_logprobs` per prompt, in order (the server's prefix cache shares their common start)."""
        return [self.next_token_logprobs(p, candidates) for p in prompts]


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


@ENGINES.register("openai", reads={"llm_base_url", "llm_model", "llm_api_key", "llm_timeout_s", "llm_api"})
@provides(OpenAICompatEngine)
def _make(settings: Settings) -> OpenAICompatEngine:
    return OpenAICompatEngine(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        api=settings.llm_api,
    )
