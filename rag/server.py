"""hoprag's HTTP API (``hoprag serve``): OpenAI-compatible chat over every knowledge base, plus a REST API.

OpenAI-compatible:

- ``GET /v1/models``: every knowledge base of the data dir as a model ``hoprag-<kb>``
  (``hoprag serve --kb NAME``: only that one).
- ``POST /v1/chat/completions``: answers the last user message from the knowledge
  base the model names; earlier user/assistant turns are the history, system and
  developer messages the answer's instructions (setting ``instructions``). The
  cited passages come structured in a ``sources`` field (on the reply, or on the
  last stream chunk), and in the text only with ``"sources_in_text": true``.
  ``usage.prompt_tokens_details.cached_tokens`` says how much of the prompt came
  from the KV cache; a stream sends usage only with ``stream_options.include_usage``.
  ``tools``, ``response_format`` (other than text) and ``n`` > 1 are refused.
  hoprag extensions in the body: ``top_k``, ``filters`` (:class:`rag.retrieve.Filters`),
  ``sources_in_text``.

REST (shapes are a contract)::

    POST   /v1/kbs                       {"name"}                       -> the knowledge base
    GET    /v1/kbs                                                      -> {"data": [...]}
    DELETE /v1/kbs/{kb}
    POST   /v1/kbs/{kb}/documents        multipart `files` or {"url"}  -> a job (202)
    GET    /v1/jobs/{id}                 {"id", "status", "files": [{"source", "status", "chunks", "reason"}]}
    GET    /v1/kbs/{kb}/documents
    DELETE /v1/kbs/{kb}/documents/{doc}
    POST   /v1/kbs/{kb}/retrieve         {"query", "k", "filters"}     -> {"hits": [{"chunk_id", "source", "page",
                                                                             "score", "text"}]}
    POST   /v1/kbs/{kb}/ask              {"question", "conversation", "stream"} -> the Answer (SSE when streaming);
                                         "conversation_id" instead of "conversation": a saved conversation

Every error is OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.
Request bodies are limited in size (an oversized upload is refused as it
arrives, never read in full); API keys are compared in constant time.

Users (issue 20, :mod:`rag.auth`): once a user exists, every ``/v1`` request
needs ``Authorization: Bearer <a user's API key>`` (the ``api_key`` setting's
keys still work, as an admin's). A knowledge base the user has no grant on
answers 404 exactly like one that does not exist, and is not listed by
``/v1/models`` or ``GET /v1/kbs``; a role too low answers 403 (a reader
uploading or deleting, a non-admin creating or deleting a knowledge base).
Keys are checked on every request (a revoked key fails at once); with
``rate_limit_per_minute`` each key gets that many requests a minute, then 429
with ``Retry-After``. Handlers find the caller's name in ``request.state.user``
(None with no user defined). Uploads, deletions and knowledge-base changes go
to the audit log (:class:`rag.auth.Audit`) with the caller and address.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import queue
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Iterator, Literal

from rag.auth import Audit, User, Users
from rag.auth.keys import key_id_of
from rag.engines.base import effective_max_tokens
from rag.generate import source_label
from rag.extras import require

require("fastapi", "api")

from fastapi import Depends, FastAPI, Request  # noqa: E402
from rag.auth.ratelimit import KeyRateLimit  # noqa: E402
from fastapi.concurrency import run_in_threadpool  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, StreamingResponse  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from rag.errors import ConfigError, HopragError, StoreError  # noqa: E402
from rag.jobs import Jobs  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.retrieve import Filters  # noqa: E402
from rag.store import knowledge_base_names  # noqa: E402
from rag.store.registry import ChromaManifest, registry_id  # noqa: E402
from rag.types import Answer, Hit  # noqa: E402

log = logging.getLogger(__name__)

SOURCES_HEADER = "\n\nSources:\n"
MODEL_PREFIX = "hoprag-"
JSON_LIMIT_BYTES = 4 * 2**20  # any request but an upload
MAX_FILES_PER_UPLOAD = 20
API_KEY_USER = "api_key"  # request.state.user of a request made with the api_key setting's key (an admin's)


# ---- request models ---------------------------------------------------------------
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


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The OpenAI chat request; unknown OpenAI parameters are accepted and ignored, unsupported ones refused."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    user: str | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    response_format: dict[str, Any] | None = None
    # hoprag extensions
    top_k: int | None = Field(None, ge=1, le=50)
    filters: dict[str, Any] | None = None
    sources_in_text: bool = False


class CreateKb(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class UrlUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=4000)
    crawl_depth: int = Field(0, ge=0, le=5)
    max_pages: int = Field(50, ge=1, le=1000)
    password: str | None = None


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    k: int | None = Field(None, ge=1, le=100)
    filters: dict[str, Any] | None = None
    strategy: str | None = None


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    answer: str = ""


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    conversation: list[Turn] = Field(default_factory=list, max_length=100)
    stream: bool = False
    session: str | None = Field(None, max_length=200)
    filters: dict[str, Any] | None = None
    top_k: int | None = Field(None, ge=1, le=50)
    strategy: str | None = None
    answer_mode: str | None = None
    max_tokens: int | None = Field(None, ge=0, le=4096)
    instructions: str | None = Field(None, max_length=4000)
    conversation_id: str | None = Field(None, min_length=1, max_length=200)  # a saved conversation (issue 21)


# ---- errors -------------------------------------------------------------------------
class ApiError(Exception):
    """An error returned in OpenAI's ``{"error": {...}}`` shape."""

    def __init__(
        self, status: int, message: str, code: str, kind: str = "invalid_request_error", param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind, self.param = status, message, code, kind, param
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


_STATUS_CODES = {
    400: ("invalid_request", "invalid_request_error"),
    401: ("invalid_api_key", "authentication_error"),
    403: ("forbidden", "permission_error"),
    404: ("not_found", "invalid_request_error"),
    405: ("method_not_allowed", "invalid_request_error"),
    409: ("conflict", "invalid_request_error"),
    413: ("request_too_large", "invalid_request_error"),
    422: ("invalid_value", "invalid_request_error"),
}


def _error_for_status(status: int, message: str) -> ApiError:
    code, kind = _STATUS_CODES.get(status, ("server_error", "server_error"))
    return ApiError(status, message, code, kind)


# ---- chat helpers ------------------------------------------------------------------------
def conversation(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """The question (last user message) and the earlier (question, answer) pairs.

    The sources block an earlier answer may carry is stripped from the history;
    system and developer messages are read by :func:`instructions`.
    """
    turns = [(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise ApiError(400, "the last message must come from the user: it is the question", "invalid_messages",
                       param="messages")
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


def instructions(messages: list[Message]) -> str:
    """The system and developer messages, joined: the answer's extra instructions."""
    return "\n\n".join(t for m in messages if m.role in ("system", "developer") and (t := m.text().strip()))


def sources(answer: Answer) -> list[dict[str, Any]]:
    """The structured ``sources`` field: the cited passages."""
    return [c.to_dict() for c in answer.citations]


def sources_text(answer: Answer) -> str:
    """The sources as text appended to the message, one ``[n] file, page p`` line each."""
    if not answer.citations:
        return ""
    lines = []
    for c in answer.citations:
        lines.append(f"[{c.number}] {source_label(c.source, c.page, c.section)}")
    return SOURCES_HEADER + "\n".join(lines)


def message_text(answer: Answer, with_sources: bool = False) -> str:
    """The assistant message: the answer (or why there is none), then the sources if asked."""
    text = answer.text if not answer.error else f"(no generated answer: {answer.error})"
    return text + (sources_text(answer) if with_sources else "")


def usage(answer: Answer) -> dict[str, Any]:
    """OpenAI's usage object, with the prompt tokens the KV cache served."""
    u = answer.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def hit_json(hit: Hit) -> dict[str, Any]:
    """One retrieved passage as the retrieve endpoint returns it."""
    c = hit.chunk
    return {
        "chunk_id": c.id,
        "source": c.source,
        "page": c.page,
        "score": hit.score,
        "text": c.text,
        "doc_id": c.doc_id,
        "title": c.title,
        "section": c.section,
        "page_end": c.page_end,
        "rank": hit.rank,
        "origin": hit.origin,
    }


def _sse(payload: dict[str, Any] | str, event: str | None = None) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {data}\n\n"


def safe_filename(name: str | None) -> str:
    """An uploaded file's name, refused if it could name another place (``../``, a folder, NUL)."""
    if not name or not name.strip():
        raise ApiError(400, "an uploaded file has no name: send each file with a filename", "invalid_filename",
                       param="files")
    if "\x00" in name or "/" in name or "\\" in name or name.strip() in (".", "..") or len(name) > 255 or any(
        ord(ch) < 32 for ch in name
    ):
        raise ApiError(
            400,
            f"file name {name!r} is not allowed: send a plain file name (no folders, '..', NUL or control "
            "characters, at most 255 characters)",
            "invalid_filename",
            param="files",
        )
    return name.strip()


# ---- knowledge bases ------------------------------------------------------------------------
def kb_not_found(name: str) -> ApiError:
    """The 404 of a knowledge base that does not exist, or that the caller may not see (the same answer)."""
    return ApiError(404, f"knowledge base {name!r} does not exist; create it with POST /v1/kbs", "kb_not_found")


# Server mode: how often an open knowledge base is checked against the Chroma server's registry.
REPLICA_CHECK_S = 1.0


class Library:
    """The knowledge bases a server offers, opened on first use; they share one embedder and one engine."""

    def __init__(self, base: RAG, only: str | None = None) -> None:
        self.base = base
        self.only = only
        self._open: dict[str, RAG] = {base.settings.kb: base}
        self._checked: dict[str, float] = {}  # server mode: when an open knowledge base's registry was last checked
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if self.only:
            return [self.only]
        settings = self.base.settings
        if settings.chroma_url:  # its registry is the list (a knowledge base another replica deleted is gone)
            opened = {settings.kb}
        else:
            with self._lock:
                opened = set(self._open)
        client = self.base.store.client if settings.chroma_url else None
        return sorted(opened | set(knowledge_base_names(settings.index_dir, settings.chroma_url, client)))

    def get(self, name: str) -> RAG:
        with self._lock:
            rag = self._open.get(name)
        if rag is not None:
            if rag is self.base or self._still_there(name, rag):
                return rag
            self._forget(name, rag)  # deleted (perhaps made anew) through another replica: reopen or 404
        if name not in self.names():
            raise kb_not_found(name)
        with self._lock:
            if name not in self._open:
                self._open[name] = self.base.sibling(name)
            return self._open[name]

    def _still_there(self, name: str, rag: RAG) -> bool:
        """Whether an open knowledge base still has the registry it was opened with (server mode; re-checked
        at most every ``REPLICA_CHECK_S``: another replica may have deleted it, or deleted and made it anew)."""
        manifest = rag.store.manifest
        if not isinstance(manifest, ChromaManifest):
            return True
        now = time.monotonic()
        if now - self._checked.get(name, 0.0) < REPLICA_CHECK_S:
            return True
        self._checked[name] = now
        return registry_id(rag.store.client, name) == manifest.collection_id

    def _forget(self, name: str, rag: RAG) -> None:
        with self._lock:
            if self._open.get(name) is rag:
                del self._open[name]
        self._checked.pop(name, None)
        log.info("knowledge base %r was deleted through another replica: closed here", name)
        rag.close()

    def create(self, name: str) -> RAG:
        if self.only and name != self.only:
            raise ApiError(403, f"this server serves only knowledge base {self.only!r} (hoprag serve --kb)",
                           "forbidden", "permission_error")
        self.base.settings.replace(kb=name)  # refuses a bad name (ConfigError -> 400)
        if name in self.names():
            raise ApiError(409, f"knowledge base {name!r} already exists", "kb_exists", param="name")
        with self._lock:
            rag = self._open[name] = self.base.sibling(name)
            return rag

    def drop(self, name: str) -> None:
        rag = self.get(name)
        if rag is self.base:
            raise ApiError(
                409,
                f"knowledge base {name!r} is this server's default and cannot be deleted; delete its documents "
                "instead",
                "kb_in_use",
            )
        with self._lock:
            self._open.pop(name, None)
        rag.store.drop()
        rag.close()

    def close(self) -> None:
        with self._lock:
            for rag in self._open.values():
                if rag is not self.base:
                    rag.close()


# ---- size limits ----------------------------------------------------------------------------
class BodyLimit:
    """ASGI middleware: a request body over its limit gets a 413 without being read in full.

    A declared ``Content-Length`` over the limit is refused before any byte is
    read; a chunked body is counted as it arrives and refused when it crosses
    the limit. Uploads (``POST .../documents``) may be ``upload_bytes`` long,
    everything else ``json_bytes``.
    """

    def __init__(self, app: Any, upload_bytes: int, json_bytes: int = JSON_LIMIT_BYTES) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.json_bytes = json_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope["path"].rstrip("/").endswith("/documents") else self.json_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit, int(declared))
            return
        seen = 0
        refused = False
        started = False

        async def counted_receive() -> dict:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    raise _TooLarge()
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if refused:  # the app answered a body it could not read (FastAPI: 400): say why instead
                if not started:
                    started = True
                    await self._refuse(send, limit, None)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit, None)
        except Exception:
            if refused and not started:
                await self._refuse(send, limit, None)
            else:
                raise

    @staticmethod
    async def _refuse(send: Callable, limit: int, size: int | None) -> None:
        said = f" ({size / 2**20:.1f} MB)" if size is not None else ""
        error = ApiError(
            413,
            f"request body too large{said}: the limit is {limit / 2**20:.1f} MB (hoprag serve --max-upload-mb for "
            "uploads; setting max_file_mb per file)",
            "request_too_large",
        )
        body = json.dumps(error.body()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


# ---- who is asking --------------------------------------------------------------------------
def _keys(api_key: str) -> list[bytes]:
    """One key, or several separated by commas (rotate without downtime)."""
    return [k.strip().encode() for k in api_key.split(",") if k.strip()]


class Caller:
    """Who sent a request and what they may do: ``user`` is None in single-user mode (no user defined)."""

    def __init__(self, user: User | None, source: str) -> None:
        self.user, self.source = user, source

    @property
    def name(self) -> str | None:
        return self.user.name if self.user else None

    def read(self, kb: str) -> None:
        """Refuse a knowledge base without a grant exactly as one that does not exist (404)."""
        if self.user is not None and not self.user.can_read(kb):
            raise kb_not_found(kb)

    def write(self, kb: str) -> None:
        self.read(kb)
        if self.user is not None and not self.user.can_write(kb):
            raise ApiError(403, f"user {self.user.name!r} ({self.user.role}) may not upload to or delete from "
                           f"knowledge base {kb!r}: that needs an editor's grant or an admin", "forbidden",
                           "permission_error")

    def admin(self, what: str) -> None:
        if self.user is not None and not self.user.is_admin:
            raise ApiError(403, f"only an admin may {what}; user {self.user.name!r} is {self.user.role}",
                           "forbidden", "permission_error")

    def sees(self, kbs: list[str]) -> list[str]:
        return [kb for kb in kbs if self.user is None or self.user.can_read(kb)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


# ---- the app ---------------------------------------------------------------------------------


def create_app(
    rag: RAG,
    *,
    api_key: str | None = None,
    model: str | None = None,
    only_kb: str | None = None,
    max_upload_mb: float | None = None,
    users: Users | None = None,
) -> FastAPI:
    """The FastAPI app answering over the knowledge bases of ``rag``'s data dir.

    ``api_key`` (default ``rag.settings.api_key``; several separated by commas):
    when set, every ``/v1`` request needs ``Authorization: Bearer <key>``.
    ``model`` is another id for ``rag``'s own knowledge base (besides
    ``hoprag-<kb>``). ``only_kb`` serves that knowledge base alone.
    ``max_upload_mb`` limits an upload request (default: 4 files of
    ``max_file_mb``). ``users`` (default: those of the data dir) decide who
    may do what once one exists.
    """
    settings = rag.settings
    keys = _keys(settings.api_key if api_key is None else api_key)
    users = users if users is not None else Users.of(settings)
    audit = Audit(settings.data_dir)
    limiter = KeyRateLimit(settings.rate_limit_per_minute)
    library = Library(rag, only=only_kb)
    jobs = Jobs()
    created = int(time.time())
    upload_mb = max_upload_mb if max_upload_mb is not None else 4 * settings.max_file_mb + 1
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.get_running_loop().run_in_executor(None, jobs.close)
        library.close()

    app = FastAPI(
        title="hoprag",
        summary="OpenAI-compatible RAG over your documents, plus a REST API for knowledge bases",
        version=_version(),
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, upload_bytes=int(upload_mb * 2**20))
    app.state.library, app.state.jobs = library, jobs

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        return _error_for_status(exc.status_code, message).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return ApiError(400, f"the request body is not valid JSON: {first.get('msg', '')}", "invalid_json").response()
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return ApiError(422, f"invalid request: {where or 'body'}: {first.get('msg', 'bad value')}", "invalid_value",
                        param=where or None).response()

    @app.exception_handler(HopragError)
    async def _hoprag(_: Request, exc: HopragError) -> JSONResponse:
        if isinstance(exc, ConfigError):
            return ApiError(400, str(exc), "invalid_request").response()
        log.warning("request failed: %s", exc)
        return ApiError(500, str(exc), "server_error", "server_error").response()

    def authorize(request: Request) -> Caller:
        """The caller of a request (also in ``request.state.user``/``.caller``), after its key and rate limit."""
        token = _bearer(request)
        source = request.client.host if request.client else ""
        # Every configured key is compared (in constant time), whichever matches.
        matched = [i for i, k in enumerate(keys) if hmac.compare_digest(token.encode(), k)]
        user: User | None = None
        identity: str | None = None
        if matched:
            user, identity = User(API_KEY_USER, "admin"), f"api_key:{matched[0]}"
        elif users.any():
            user = users.authenticate(token)  # read fresh each request: a revoked key fails at once
            identity = f"key:{key_id_of(token)}" if user else None
        elif not keys:
            identity = f"address:{source}"  # single-user mode
        if user is None and identity is None:
            raise ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer <key>' (a user's key: hoprag users keys "
                "NAME --new)", "invalid_api_key", "authentication_error",
            )
        wait = limiter.hit(identity)
        if wait is not None:
            raise ApiError(429, f"rate limit reached: {settings.rate_limit_per_minute} requests per minute per key; "
                           f"retry in {wait:.0f} s (setting rate_limit_per_minute)", "rate_limit_exceeded",
                           "requests", headers={"Retry-After": str(int(wait + 0.999))})
        caller = Caller(user, source)
        request.state.user, request.state.caller = caller.name, caller
        return caller

    app.state.authorize = authorize  # routes added elsewhere: Depends(app.state.authorize)

    def record(caller: Caller, action: str, target: str, **extra: Any) -> None:
        audit.record(caller.name or "", action, target, caller.source, **extra)

    def model_for(kb: str) -> str:
        return f"{MODEL_PREFIX}{kb}"

    def model_ids(caller: Caller) -> list[str]:
        """The models ``caller`` may use: the extra ``model`` id, then ``hoprag-<kb>`` per readable KB."""
        kbs = caller.sees(library.names())
        return list(dict.fromkeys(([model] if model and settings.kb in kbs else []) + [model_for(kb) for kb in kbs]))

    def kb_for_model(name: str, caller: Caller) -> str:
        kbs = caller.sees(library.names())
        if model and name == model and settings.kb in kbs:
            return settings.kb
        if name.startswith(MODEL_PREFIX) and name[len(MODEL_PREFIX):] in kbs:
            return name[len(MODEL_PREFIX):]
        raise ApiError(404, f"The model {name!r} does not exist; this server has: {', '.join(model_ids(caller))}",
                       "model_not_found", param="model")

    def model_json(mid: str) -> dict[str, Any]:
        return {"id": mid, "object": "model", "created": created, "owned_by": "hoprag"}

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # ---- OpenAI-compatible ----------------------------------------------------------
    @app.get("/v1/models", tags=["openai"])
    def models(caller: Caller = Depends(authorize)) -> dict[str, Any]:
        return {"object": "list", "data": [model_json(m) for m in model_ids(caller)]}

    @app.get("/v1/models/{model_id}", tags=["openai"])
    def one_model(model_id: str, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        kb_for_model(model_id, caller)
        return model_json(model_id)

    # A sync endpoint: FastAPI runs it (and the stream's iteration) in a worker thread,
    # so retrieval and generation never block the event loop.
    @app.post("/v1/chat/completions", response_model=None, tags=["openai"])
    def chat_completions(
        req: ChatRequest, caller: Caller = Depends(authorize)
    ) -> dict[str, Any] | StreamingResponse:
        for param, given in (("tools", req.tools), ("functions", req.functions)):
            if given:
                raise ApiError(400, f"'{param}' is not supported: hoprag answers from documents and calls no tools",
                               "unsupported_parameter", param=param)
        if req.response_format and req.response_format.get("type", "text") != "text":
            raise ApiError(400, "'response_format' is not supported: answers are text with [n] citations; the "
                           "passages come structured in 'sources'", "unsupported_parameter", param="response_format")
        if req.n != 1:
            raise ApiError(400, f"n={req.n} is not supported: hoprag returns one choice (n=1)",
                           "unsupported_parameter", param="n")
        kb = kb_for_model(req.model, caller)
        rag = library.get(kb)
        model_id = req.model
        question, history = conversation(req.messages)
        overrides: dict[str, Any] = {}
        max_tokens = req.max_completion_tokens or req.max_tokens
        if max_tokens:
            overrides["max_new_tokens"] = max_tokens
        if req.temperature is not None:
            overrides["temperature"] = req.temperature
        if req.top_k:
            overrides["top_k"] = req.top_k
        extra = instructions(req.messages)
        if extra:
            overrides["instructions"] = extra
        run_settings = rag.settings.replace(**overrides)
        filters = Filters.of(req.filters)

        def produce() -> Iterator[str | Answer]:
            return rag.stream(question, history, filters=filters, session=req.user, **overrides)

        # The SSE response would pull each item on another pool thread; one
        # dedicated thread iterates the stream instead (engines allow either: the
        # local engine takes its lock per forward pass, never across a yield),
        # and a client that goes away stops the producer at its next item.
        items = produce() if not req.stream else _in_one_thread(produce)
        # Take the first item here so retrieval errors (empty question, bad
        # filter) become HTTP errors instead of a broken stream.
        first = next(items)
        rid, now = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def finish(answer: Answer) -> str:
            made = answer.usage.completion_tokens
            # The limit the engine ran with: the request's, the setting's, or the engine's default.
            return "length" if made and made >= effective_max_tokens(rag.engine, run_settings.max_new_tokens) else "stop"

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
                        "message": {"role": "assistant", "content": message_text(answer, req.sources_in_text)},
                        "finish_reason": finish(answer),
                        "logprobs": None,
                    }
                ],
                "usage": usage(answer),
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

        include_usage = bool(req.stream_options and req.stream_options.include_usage)

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
            if streamed:
                tail = sources_text(answer) if req.sources_in_text else ""
            else:
                tail = message_text(answer, req.sources_in_text)
            last = chunk({"content": tail} if tail else {}, finish(answer))
            last["sources"] = sources(answer)
            yield _sse(last)
            if include_usage:  # OpenAI's shape: one more chunk, no choices, the usage
                yield _sse({"id": rid, "object": "chat.completion.chunk", "created": now, "model": model_id,
                            "choices": [], "usage": usage(answer)})
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    # ---- REST: knowledge bases ------------------------------------------------------------
    def kb_json(name: str) -> dict[str, Any]:
        rag = library.get(name)
        return {"name": name, "model": model_for(name), "documents": len(rag.documents()), "object": "knowledge_base"}

    @app.post("/v1/kbs", status_code=201, tags=["knowledge bases"])
    def create_kb(req: CreateKb, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        """Create an empty knowledge base ``{"name"}`` (1-48 letters, digits, '-' or '_'); admins only."""
        caller.admin("create knowledge bases")
        library.create(req.name)
        record(caller, "kb_create", req.name)
        return kb_json(req.name)

    @app.get("/v1/kbs", tags=["knowledge bases"])
    def list_kbs(caller: Caller = Depends(authorize)) -> dict[str, Any]:
        """The knowledge bases the caller may read."""
        return {"object": "list", "data": [kb_json(name) for name in caller.sees(library.names())]}

    @app.delete("/v1/kbs/{kb}", tags=["knowledge bases"])
    def delete_kb(kb: str, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        caller.read(kb)
        caller.admin("delete knowledge bases")
        library.drop(kb)
        record(caller, "kb_delete", kb)
        return {"name": kb, "deleted": True}

    # ---- REST: documents -----------------------------------------------------------------
    upload_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                            "password": {"type": "string", "description": "opens encrypted PDFs"},
                        },
                        "required": ["files"],
                    }
                },
                "application/json": {"schema": UrlUpload.model_json_schema()},
            },
        }
    }

    @app.post("/v1/kbs/{kb}/documents", status_code=202, tags=["documents"], openapi_extra=upload_doc)
    async def upload(kb: str, request: Request, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        """Add files (multipart, one or more ``files`` fields) or a web page (JSON ``{"url"}``); returns a job."""
        caller.write(kb)
        rag = await run_in_threadpool(library.get, kb)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                payload = UrlUpload.model_validate_json(await request.body())
            except ValueError as exc:
                raise _validation_error(exc) from None
            url = payload.url.strip()
            if not url.startswith(("http://", "https://")):
                raise ApiError(400, f"url {url[:200]!r} is not an http(s) URL", "invalid_url", param="url")

            def ingest_url(progress: Callable[[str, str, float], None]):
                return rag.ingest([url], progress, password=payload.password, crawl_depth=payload.crawl_depth,
                                  max_pages=payload.max_pages)

            job = jobs.submit(kb, [url], ingest_url).to_dict()
            await run_in_threadpool(record, caller, "ingest", kb, job=job["id"], sources=[url])
            return job
        if kind != "multipart/form-data":
            raise ApiError(415, "send the files as multipart/form-data (field 'files') or a JSON {\"url\": ...}",
                           "unsupported_media_type")
        async with request.form(max_files=MAX_FILES_PER_UPLOAD, max_fields=10) as form:
            files = [f for f in form.getlist("files") if not isinstance(f, str)]
            password = form.get("password")
            if not files:
                raise ApiError(400, "no file in the upload: send one or more multipart fields named 'files'",
                               "no_files", param="files")
            names = [safe_filename(f.filename) for f in files]
            limit = int(rag.settings.max_file_mb * 2**20)
            inputs: list[tuple[str, bytes]] = []
            for name, f in zip(names, files):
                data = await f.read(limit + 1)
                inputs.append((name, data))  # a file over max_file_mb fails in ingest with the usual reason
        secret = password if isinstance(password, str) and password else None

        def ingest_files(progress: Callable[[str, str, float], None]):
            return rag.ingest(inputs, progress, password=secret)

        job = jobs.submit(kb, names, ingest_files).to_dict()
        await run_in_threadpool(record, caller, "ingest", kb, job=job["id"], sources=names)
        return job

    @app.get("/v1/jobs/{job_id}", tags=["documents"])
    def get_job(job_id: str, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        """An upload's progress: ``{"id", "status", "files": [{"source", "status", "chunks", "reason"}]}``."""
        job = jobs.get(job_id)
        if job is None or not caller.sees([job.kb]):
            raise ApiError(404, f"job {job_id!r} does not exist (the server keeps the last 200)", "job_not_found")
        return job.to_dict()

    @app.get("/v1/kbs/{kb}/documents", tags=["documents"])
    def list_documents(kb: str, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        caller.read(kb)
        docs = library.get(kb).documents()
        return {"object": "list", "data": [dict(d.__dict__) for d in docs]}

    @app.delete("/v1/kbs/{kb}/documents/{doc}", tags=["documents"])
    def delete_document(kb: str, doc: str, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        """Remove a document (id, id prefix or source name) from every index."""
        caller.write(kb)
        rag = library.get(kb)
        try:
            removed = rag.delete(doc)
        except StoreError as exc:
            if "no document matches" in str(exc) or "no document " in str(exc):
                raise ApiError(404, str(exc), "document_not_found") from None
            raise
        record(caller, "document_delete", kb, doc_id=removed.doc_id, source_name=removed.source)
        return {"deleted": removed.doc_id, "source": removed.source, "document": dict(removed.__dict__)}

    # ---- REST: questions --------------------------------------------------------------------
    @app.post("/v1/kbs/{kb}/retrieve", tags=["questions"])
    def retrieve(kb: str, req: RetrieveRequest, caller: Caller = Depends(authorize)) -> dict[str, Any]:
        """The top-``k`` passages for ``query``: ``{"hits": [{"chunk_id", "source", "page", "score", "text"}]}``."""
        caller.read(kb)
        overrides = {"strategy": req.strategy} if req.strategy else {}
        hits = library.get(kb).retrieve(req.query, k=req.k, filters=req.filters, **overrides)
        return {"hits": [hit_json(h) for h in hits]}

    @app.post("/v1/kbs/{kb}/ask", response_model=None, tags=["questions"])
    def ask(kb: str, req: AskRequest, caller: Caller = Depends(authorize)) -> dict[str, Any] | StreamingResponse:
        """Answer ``question`` (with the earlier ``conversation`` turns) as hoprag's Answer JSON, or SSE events
        ``token`` (``{"text"}``), then ``answer`` (the Answer) or ``error``."""
        caller.read(kb)
        rag = library.get(kb)
        overrides: dict[str, Any] = {}
        for name, value in (("top_k", req.top_k), ("strategy", req.strategy), ("answer_mode", req.answer_mode),
                            ("max_new_tokens", req.max_tokens), ("instructions", req.instructions)):
            if value is not None:
                overrides[name] = value
        rag.settings.replace(**overrides)  # a bad value is a 400 now, not a broken stream
        history = [(t.question, t.answer) for t in req.conversation]
        if req.conversation_id and history:
            raise ApiError(400, "send conversation (the earlier turns) or conversation_id (a saved conversation), "
                           "not both", "invalid_request", param="conversation_id")
        # The saved conversation's stored turns are the history; the finished answer is saved to it.
        saved = {"conversation": req.conversation_id, "owner": caller.name or "local"} if req.conversation_id else {}

        def produce() -> Iterator[str | Answer]:
            return rag.stream(req.question, history, filters=Filters.of(req.filters), session=req.session,
                              **saved, **overrides)

        if not req.stream:
            answer = None
            for item in produce():
                answer = item
            assert isinstance(answer, Answer)
            return answer.to_dict()
        items = _in_one_thread(produce)
        first = next(items)

        def events() -> Iterator[str]:
            try:
                for item in _chain(first, items):
                    if isinstance(item, Answer):
                        yield _sse(item.to_dict(), "answer")
                    else:
                        yield _sse({"text": item}, "token")
            except HopragError as exc:
                log.warning("stream failed: %s", exc)
                yield _sse(ApiError(500, str(exc), "server_error", "server_error").body(), "error")

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _validation_error(exc: ValueError) -> ApiError:
    """A pydantic error of a body parsed by hand, as the handler of RequestValidationError would say it."""
    errors = getattr(exc, "errors", lambda: [])()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return ApiError(400, f"the request body is not valid JSON: {first.get('msg', '')}", "invalid_json")
    where = ".".join(str(p) for p in first.get("loc", ()))
    return ApiError(422, f"invalid request: {where or 'body'}: {first.get('msg', 'bad value')}", "invalid_value",
                    param=where or None)


def _version() -> str:
    from rag import __version__

    return __version__


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
                # The stream's own clean-up (usage, KV snapshot) runs in this thread; no engine
                # lock is held between items (the local engine locks per forward pass).
                source.close()  # type: ignore[attr-defined]
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
