"""An OpenAI-compatible HTTP API over one knowledge base (``hoprag serve``).

``POST /v1/chat/completions`` answers the last user message with RAG (earlier
user/assistant turns are the history), as one JSON reply or as server-sent
events; ``GET /v1/models`` lists the one model, named after the knowledge base.
The cited sources are appended to the message text (so any chat UI shows them)
and returned structured in a ``sources`` field (on the reply, or on the last
stream chunk). hoprag extensions in the request body: ``top_k`` and
``filters`` (see :class:`rag.retrieve.Filters`).
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from rag.extras import require

require("fastapi", "api")

from fastapi import Depends, FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, StreamingResponse  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from rag.errors import ConfigError, HopragError  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.retrieve import Filters  # noqa: E402
from rag.types import Answer  # noqa: E402

log = logging.getLogger(__name__)

SOURCES_HEADER = "\n\nSources:\n"


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str = ""


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The OpenAI chat request; unknown OpenAI parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    n: int = Field(1, ge=1, le=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    user: str | None = None
    # hoprag extensions
    top_k: int | None = Field(None, ge=1, le=50)
    filters: dict[str, Any] | None = None


class ApiError(Exception):
    """An error returned in OpenAI's ``{"error": {...}}`` shape."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


def conversation(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """The question (last user message) and the earlier (question, answer) pairs.

    System messages are ignored: the answer prompt is hoprag's own. The sources
    block hoprag appended to its earlier answers is stripped from the history.
    """
    turns = [(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise ApiError(400, "the last message must come from the user: it is the question", "invalid_messages")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in turns[:-1]:
        if role == "user":
            if pending is not None:
                history.append((pending, ""))
            pending = text
        elif pending is not None:
            history.append((pending, text.split(SOURCES_HEADER)[0]))
            pending = None
    if pending is not None:
        history.append((pending, ""))
    return turns[-1][1], history


def sources(answer: Answer) -> list[dict[str, Any]]:
    """The structured ``sources`` field: the cited passages."""
    return [c.to_dict() for c in answer.citations]


def sources_text(answer: Answer) -> str:
    """The sources as text appended to the message, one ``[n] file, page p`` line each."""
    if not answer.citations:
        return ""
    lines = []
    for c in answer.citations:
        page = f", page {c.page}" if c.page is not None else ""
        section = f" ({c.section})" if c.section else ""
        lines.append(f"[{c.number}] {Path(c.source).name or c.source}{page}{section}")
    return SOURCES_HEADER + "\n".join(lines)


def message_text(answer: Answer) -> str:
    """The full assistant message: the answer (or why there is none), then the sources."""
    text = answer.text if not answer.error else f"(no generated answer: {answer.error})"
    return text + sources_text(answer)


def _usage(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def create_app(rag: RAG, *, api_key: str | None = None, model: str | None = None) -> FastAPI:
    """The FastAPI app answering over ``rag``.

    ``api_key`` (default ``rag.settings.api_key``): when set, every ``/v1``
    request needs ``Authorization: Bearer <api_key>``. ``model`` is the model id
    clients must use (default ``hoprag-<kb>``).
    """
    key = rag.settings.api_key if api_key is None else api_key
    model_id = model or f"hoprag-{rag.settings.kb}"
    created = int(time.time())
    app = FastAPI(title="hoprag", summary="OpenAI-compatible RAG over your documents", version="0.1.0")

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return ApiError(400, f"invalid request: {where}: {first.get('msg', 'bad value')}", "invalid_request").response()

    @app.exception_handler(HopragError)
    async def _hoprag(_: Request, exc: HopragError) -> JSONResponse:
        if isinstance(exc, ConfigError):
            return ApiError(400, str(exc), "invalid_request").response()
        log.warning("request failed: %s", exc)
        return ApiError(500, str(exc), "server_error", "server_error").response()

    def authorize(request: Request) -> None:
        if not key:
            return
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), key.encode()):
            raise ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "invalid_api_key",
                "authentication_error",
            )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": created, "owned_by": "hoprag"}],
        }

    # A sync endpoint: FastAPI runs it (and the stream's iteration) in a worker thread,
    # so retrieval and generation never block the event loop.
    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)], response_model=None)
    def chat_completions(req: ChatRequest) -> dict[str, Any] | StreamingResponse:
        if req.model != model_id:
            raise ApiError(404, f"model {req.model!r} does not exist; this server has: {model_id}", "model_not_found")
        question, history = conversation(req.messages)
        overrides: dict[str, Any] = {}
        max_tokens = req.max_completion_tokens or req.max_tokens
        if max_tokens:
            overrides["max_new_tokens"] = max_tokens
        if req.temperature is not None:
            overrides["temperature"] = req.temperature
        if req.top_k:
            overrides["top_k"] = req.top_k
        settings = rag.settings.replace(**overrides)
        filters = Filters.of(req.filters)

        def produce() -> Iterator[str | Answer]:
            return rag.stream(question, history, filters=filters, session=req.user, **overrides)

        # The local engine holds its lock across yields, so a stream must be
        # iterated by one thread; the SSE response pulls from several.
        items = produce() if not req.stream else _in_one_thread(produce)
        # Take the first item here so retrieval errors (empty question, bad
        # filter) become HTTP errors instead of a broken stream.
        first = next(items)
        rid, now = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def finish(answer: Answer) -> str:
            return "length" if answer.usage.completion_tokens >= settings.max_new_tokens else "stop"

        if not req.stream:
            answer = first
            for item in items:
                answer = item
            assert isinstance(answer, Answer)
            return {
                "id": rid,
                "object": "chat.completion",
                "created": now,
                "model": model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": message_text(answer)},
                        "finish_reason": finish(answer),
                        "logprobs": None,
                    }
                ],
                "usage": _usage(answer),
                "sources": sources(answer),
            }

        def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": now,
                "model": model_id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
            }

        def events() -> Iterator[str]:
            yield _sse(chunk({"role": "assistant", "content": ""}))
            streamed = False
            answer: Answer | None = None
            try:
                for item in _chain(first, items):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        streamed = True
                        yield _sse(chunk({"content": item}))
            except HopragError as exc:
                log.warning("stream failed: %s", exc)
                yield _sse({"error": {"message": str(exc), "type": "server_error", "param": None, "code": None}})
                yield _sse("[DONE]")
                return
            assert answer is not None
            # Nothing streamed (empty knowledge base, LLM unreachable): send the whole message now.
            tail = sources_text(answer) if streamed else message_text(answer)
            last = chunk({"content": tail} if tail else {}, finish(answer))
            last["sources"] = sources(answer)
            last["usage"] = _usage(answer)
            yield _sse(last)
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _in_one_thread(produce: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """Iterate ``produce()`` in a dedicated thread; items (and its exception) come through a queue.

    Closing the returned iterator (client gone) stops the producer at its next item.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            source = produce()
            try:
                for item in source:
                    items.put(("item", item))
                    if stop.is_set():
                        return
            finally:
                source.close()  # type: ignore[attr-defined]  # releases the engine lock in this thread
            items.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            items.put(("error", exc))

    threading.Thread(target=run, name="hoprag-stream", daemon=True).start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
