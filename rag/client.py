"""A small HTTP client for ``hoprag serve`` with the same methods as :class:`rag.RAG`.

Moving code from in-process to a server is one line::

    rag = RAG.open("data")                               # in process
    rag = Client("http://127.0.0.1:8000", api_key="…")   # the same calls, over HTTP

    rag.ingest(["notes.pdf"])                # uploads, waits for the job, returns an IngestReport
    answer = rag.ask("What changed in v2?")  # an Answer with its citations
    for piece in rag.stream("And in v3?"):   # text pieces, then the Answer
        ...

Errors are hoprag's: a refused request raises :class:`~rag.errors.ConfigError`
(400/413/422), an unknown document :class:`~rag.errors.StoreError`, anything
else :class:`ServerError` (all :class:`~rag.errors.HopragError`), with the
server's one-line message.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import httpx

from rag.errors import ConfigError, HopragError, StoreError
from rag.types import (
    Answer,
    AnswerSentence,
    Chunk,
    Citation,
    Document,
    FileResult,
    Hit,
    IngestReport,
    Span,
    Trace,
    TraceStep,
    Usage,
)

Input = str | Path | tuple[str, bytes]
# The RAG.ask/stream overrides the server takes, and their names in the ask request.
_ASK_OVERRIDES = {"top_k": "top_k", "strategy": "strategy", "answer_mode": "answer_mode",
                  "max_new_tokens": "max_tokens", "instructions": "instructions",
                  "conversation": "conversation_id"}  # a saved conversation of the key's user (issue 21)


class ServerError(HopragError):
    """The server failed or refused a request (``status`` and ``code`` say how)."""

    def __init__(self, message: str, status: int = 0, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class Client:
    """The knowledge base ``kb`` of a hoprag server at ``url`` (``http://host:port``, with or without ``/v1``)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        kb: str = "default",
        timeout: float = 600.0,
        poll_s: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/v1") else base + "/v1"
        self.kb = kb
        self.poll_s = poll_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._async_transport = async_transport

    # ---- plumbing ---------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"hoprag server {self.url} is unreachable: {exc}") from exc
        if resp.status_code >= 400:
            raise _error(resp)
        return resp.json()

    def _kb(self, path: str = "") -> str:
        return f"/kbs/{self.kb}{path}"

    # ---- knowledge bases ----------------------------------------------------------------
    def knowledge_bases(self) -> list[str]:
        """The knowledge bases the server offers."""
        return [kb["name"] for kb in self._request("GET", "/kbs")["data"]]

    def create(self) -> None:
        """Create this client's knowledge base on the server."""
        self._request("POST", "/kbs", json={"name": self.kb})

    def drop(self) -> None:
        """Delete this client's whole knowledge base on the server."""
        self._request("DELETE", self._kb())

    # ---- write side (RAG's methods) ----------------------------------------------------------
    def ingest(
        self,
        paths_or_bytes: Iterable[Input],
        progress: Any = None,
        *,
        password: str | None = None,
        crawl_depth: int = 0,
        max_pages: int = 50,
    ) -> IngestReport:
        """Upload files, folders, http(s) URLs or ``(name, bytes)`` pairs; wait for the jobs; one report.

        ``progress(source, stage, fraction)`` is called as the server reports progress.
        """
        t0 = time.perf_counter()
        files: list[tuple[str, bytes]] = []
        jobs: list[dict[str, Any]] = []
        for item in paths_or_bytes:
            if isinstance(item, tuple):
                files.append((item[0], item[1]))
            elif isinstance(item, str) and item.startswith(("http://", "https://")):
                body = {"url": item, "crawl_depth": crawl_depth, "max_pages": max_pages}
                if password:
                    body["password"] = password
                jobs.append(self._request("POST", self._kb("/documents"), json=body))
            else:
                path = Path(item)
                found = sorted(p for p in path.rglob("[!.]*") if p.is_file()) if path.is_dir() else [path]
                files += [(p.name, p.read_bytes()) for p in found]
        if files:
            parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
            jobs.append(self._request("POST", self._kb("/documents"), files=parts,
                                      data={"password": password} if password else None))
        results: list[FileResult] = []
        for job in jobs:
            results += self._wait(job, progress)
        return IngestReport(tuple(results), time.perf_counter() - t0)

    def _wait(self, job: dict[str, Any], progress: Any) -> list[FileResult]:
        seen: dict[str, tuple[str, float]] = {}
        while True:
            if progress is not None:
                for f in job["files"]:
                    now = (f.get("stage") or f["status"], float(f.get("progress") or 0.0))
                    if f["status"] != "queued" and seen.get(f["source"]) != now:
                        seen[f["source"]] = now
                        progress(f["source"], *now)
            if job["status"] in ("done", "failed"):
                break
            time.sleep(self.poll_s)
            job = self._request("GET", f"/jobs/{job['id']}")
        return [
            FileResult(f["source"], f["status"], f.get("doc_id", ""), f.get("pages", 0), f.get("chunks", 0),
                       f.get("reason") or "")
            for f in job["files"]
        ]

    def documents(self) -> list[Document]:
        """The documents in this knowledge base."""
        return [Document(**d) for d in self._request("GET", self._kb("/documents"))["data"]]

    def delete(self, doc_id: str) -> Document:
        """Remove a document (id, id prefix or source) from every index."""
        return Document(**self._request("DELETE", self._kb(f"/documents/{doc_id}"))["document"])

    # ---- read side ---------------------------------------------------------------------
    def retrieve(self, query: str, k: int | None = None, filters: Any = None, **overrides: Any) -> list[Hit]:
        """The top-``k`` passages for ``query`` (``overrides``: ``strategy``)."""
        _only(overrides, {"strategy"})
        body: dict[str, Any] = {"query": query, "k": k, "filters": _filters(filters), **overrides}
        return [_hit(h) for h in self._request("POST", self._kb("/retrieve"), json=body)["hits"]]

    async def aretrieve(self, query: str, k: int | None = None, filters: Any = None, **overrides: Any) -> list[Hit]:
        """:meth:`retrieve` without blocking an event loop (async HTTP)."""
        _only(overrides, {"strategy"})
        body: dict[str, Any] = {"query": query, "k": k, "filters": _filters(filters), **overrides}
        async with httpx.AsyncClient(base_url=self.url, headers=dict(self._http.headers), timeout=self._http.timeout,
                                     transport=self._async_transport) as http:
            try:
                resp = await http.post(self._kb("/retrieve"), json=body)
            except httpx.HTTPError as exc:
                raise ServerError(f"hoprag server {self.url} is unreachable: {exc}") from exc
        if resp.status_code >= 400:
            raise _error(resp)
        return [_hit(h) for h in resp.json()["hits"]]

    def ask(self, question: str, history: Sequence[tuple[str, str]] | None = None, **overrides: Any) -> Answer:
        """Answer ``question`` (blocking); see :meth:`stream`."""
        body = self._ask_body(question, history, overrides, stream=False)
        return answer_from_dict(self._request("POST", self._kb("/ask"), json=body))

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] | None = None,
        *,
        filters: Any = None,
        session: str | None = None,
        **overrides: Any,
    ) -> Iterator[str | Answer]:
        """Yield answer text pieces as the server streams them, then the final :class:`Answer`."""
        body = self._ask_body(question, history, {**overrides, "filters": filters, "session": session}, stream=True)
        try:
            with self._http.stream("POST", self._kb("/ask"), json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _error(resp)
                event = "message"
                for line in resp.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[5:].strip())
                        if event == "token":
                            yield data["text"]
                        elif event == "answer":
                            yield answer_from_dict(data)
                        elif event == "error":
                            raise ServerError(data["error"]["message"], 500, data["error"].get("code"))
        except httpx.HTTPError as exc:
            raise ServerError(f"hoprag server {self.url} is unreachable: {exc}") from exc

    def _ask_body(self, question: str, history: Any, overrides: dict[str, Any], stream: bool) -> dict[str, Any]:
        filters, session = overrides.pop("filters", None), overrides.pop("session", None)
        _only(overrides, set(_ASK_OVERRIDES))
        body: dict[str, Any] = {
            "question": question,
            "conversation": [{"question": q, "answer": a} for q, a in history or ()],
            "stream": stream,
            "filters": _filters(filters),
            "session": session,
        }
        body.update({_ASK_OVERRIDES[k]: v for k, v in overrides.items() if v is not None})
        return body

    # ---- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(resp: httpx.Response) -> HopragError:
    try:
        err = resp.json()["error"]
        message, code = str(err["message"]), err.get("code")
    except (ValueError, KeyError, TypeError):
        message, code = f"HTTP {resp.status_code}: {resp.text[:200]}", None
    if resp.status_code in (400, 413, 422):
        return ConfigError(message)
    if resp.status_code == 404 and code == "document_not_found":
        return StoreError(message)
    return ServerError(message, resp.status_code, code)


def _only(overrides: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(f"the server takes no override(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _filters(filters: Any) -> dict[str, Any] | None:
    if filters is None or isinstance(filters, dict):
        return filters
    return {k: v for k, v in filters.__dict__.items() if v is not None}  # a rag.retrieve.Filters


def _hit(h: dict[str, Any]) -> Hit:
    chunk = Chunk(id=h["chunk_id"], doc_id=h.get("doc_id", ""), text=h.get("text", ""), source=h["source"],
                  title=h.get("title", ""), page=h.get("page"), page_end=h.get("page_end"),
                  section=h.get("section", ""))
    return Hit(chunk, float(h["score"]), h.get("rank", 0), h.get("origin", "dense"))


def answer_from_dict(d: dict[str, Any]) -> Answer:
    """An :class:`Answer` from its JSON (:meth:`Answer.to_dict`); passages carry no text."""
    citations = tuple(
        Citation(
            c["number"], c["chunk_id"], c["doc_id"], c["source"], c.get("page"), c.get("section", ""), c["text"],
            bool(c.get("inferred")),
            tuple(Span(h["start"], h["end"], h.get("score", 0.0), h.get("page"), tuple(tuple(b) for b in h["boxes"]))
                  for h in c.get("highlights", ())),
        )
        for c in d.get("citations", ())
    )
    passages = tuple(
        Hit(Chunk(id=p["chunk_id"], doc_id="", text="", source=p["source"], page=p.get("page")), float(p["score"]), i)
        for i, p in enumerate(d.get("passages", ()))
    )
    steps = tuple(
        TraceStep(s["name"], s.get("query", ""), tuple((h[0], h[1]) for h in s.get("hits", ())), s.get("seconds", 0.0),
                  s.get("detail", {}))
        for s in d.get("trace", {}).get("steps", ())
    )
    u = d.get("usage", {})
    return Answer(
        question=d["question"],
        text=d["answer"],
        citations=citations,
        passages=passages,
        trace=Trace(steps),
        usage=Usage(u.get("prompt_tokens", 0), u.get("cached_tokens", 0), u.get("completion_tokens", 0)),
        timings=dict(d.get("timings", {})),
        error=d.get("error") or "",
        mode=d.get("mode", "generative"),
        sentences=tuple(AnswerSentence(s["start"], s["end"], s.get("supported"), s.get("score", 0.0),
                                       tuple(s.get("citations", ())),
                                       tuple((int(a), int(b)) for a, b in s.get("unverified", ())))
                        for s in d.get("sentences", ())),
        abstained=bool(d.get("abstained")),
        unsupported=tuple(d.get("unsupported", ())),
    )
