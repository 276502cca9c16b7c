"""The document registry in the Chroma server: the manifest of a knowledge base when Chroma is a server.

With ``chroma_url`` set, nothing local is a source of truth: every ``hoprag serve``
replica (each with its own data dir) reads the documents of knowledge base ``kb``
from the collection ``hoprag-<kb>.docs`` next to its chunks (``hoprag-<kb>``; a
knowledge-base name has no dot, so the names cannot collide). It holds:

- one record per document, ``doc:<doc_id>``: source, title, pages, chunks, added,
  status (pending | committed | deleting), replaces, ``seq`` (a unique write stamp,
  ``<time_ns>-<random>``, new on every write of the record), ``site`` (host and
  data dir of the writer) and ``written`` (its wall-clock time);
- ``meta:embed_model`` (the embedder of the vectors) and ``meta:epoch`` (changed by
  :meth:`ChromaManifest.bump` when a derived index was rebuilt);
- one *clock* record per writing process, ``clock:<host>-<pid>-<random>``, whose
  value the process replaces after each of its writes (a few hundred bytes each; an
  open removes those not written for :data:`CLOCK_TTL_S`, which readers take for one
  more change).

Visibility. Chroma has no transactions, so a change is one upsert request: a document
becomes visible by the upsert of its own record with status ``committed`` (its chunks
were written before, while it was ``pending``); a replacement sends the new record and
the old one's ``deleting`` in the same request. Readers keep only chunks of documents
whose record says ``committed``.

Seeing other writers' changes. Each instance keeps a view (every record, read in one
``get``) and the clock values it was read at. A read re-checks the clocks at most
every :data:`POLL_S` seconds (one small ``get`` of the clock records, a few ms) and
reloads the view when any clock differs. A writer upserts its records *first* and
its clock *after*, so a reader that sees the new clock value reads the records in its
next ``get``. No record is read-modify-written by two processes: each process only
replaces its own clock, so two writers on two machines cannot overwrite each other's
signal (a single shared counter could be: both read 5, both write 6, and a replica
that saw the first 6 misses the second change). A replica therefore sees a change at
most ``POLL_S`` plus one reload after it was written (a query then, or the next).
A new ``pending`` record ticks no clock (nothing visible changes; the commit ticks).
Measured on this machine (two stores on two data dirs, one ``chroma run``): a commit
visible to the other's BM25 search after 0.26 s median, 0.72 s max; a delete 0.86 s.
A full reload reads every record: 0.8 s for 10,000 documents.

The generation. The lexical and name indexes record the generation they stand for
and catch up when it differs, so ``generation()`` must change whenever the committed
set does; only equality is used. It is a 62-bit hash of ``meta:epoch`` and the sorted
``(doc_id, seq)`` of the committed records of one view: a function of the committed
set itself, not of a counter, so it cannot miss a change however writers interleave,
two replicas at the same state agree on it, and ``snapshot()`` (generation and
committed ids) is consistent because both come from the same ``get``. A commit gives
the record a new ``seq``, so deleting and re-adding a document is a change too; going
back to an earlier set is the same generation, which is right (the same rows).
Inside :meth:`ChromaManifest.writing` the view is not reloaded, so the generation
before and after a write differ by that write alone (the lexical index applies it
without a catch-up); a foreign change during it shows at the next poll.

Locks and several writers. The write lock is still a local file lock
(``<data dir>/<kb>/write.lock``): processes on one data dir take turns, writers on
two machines do not. What that allows, honestly: the same file ingested on both at
once writes the same ``doc_id`` (the content hash) and the same chunk ids, so it
ends committed once; two *different* versions of one source ingested at once may
both end committed (each replaced only what it saw; ``hoprag reindex --check``
reports two committed documents sharing a source, deleting one fixes it); a delete
and a re-ingest of the same content at the same moment may leave it missing or
incomplete (the check reports it; re-ingest). Interrupted writes: :meth:`in_flight_ids`
offers for clean-up ``deleting`` records, ``pending`` records of this site (the local
lock proves their writer is gone) and ``pending`` records older than
:data:`STALE_PENDING_S` — never another machine's write in progress.

Migration. A knowledge base used with a Chroma server before the registry existed has
its documents in ``<kb>/manifest.sqlite``: on the first open whose registry is empty,
the rows are copied in and the file is renamed ``manifest.sqlite.migrated``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

from rag.errors import HopragError, StoreError
from rag.store.manifest import DocumentRow, Manifest
from rag.store.vectors import upsert_batched
from rag.types import Document

log = logging.getLogger(__name__)

POLL_S = 1.0  # a read re-checks the clocks at most this often
STALE_PENDING_S = 3600.0  # another site's pending document older than this is an interrupted write
CLOCK_TTL_S = 7 * 86400.0  # a clock record not written for this long is removed (its process is long gone)
SUFFIX = ".docs"
_PREFIX = "hoprag-"
_VECTOR = [1.0]  # Chroma stores a vector per record; the registry never queries by it


def collection_name(kb: str) -> str:
    return f"{_PREFIX}{kb}{SUFFIX}"


def is_server_client(client: Any) -> bool:
    """Whether ``client`` talks to a Chroma server (HTTP), not an in-process Chroma."""
    try:
        return str(client.get_settings().chroma_api_impl).endswith("FastAPI")
    except Exception:  # an object without Chroma settings: not a server client we know
        return False


def registered_kbs(client: Any) -> list[str]:
    """The knowledge bases with a registry on the Chroma server of ``client``, sorted."""
    return sorted(registry_ids(client))


def registry_ids(client: Any) -> dict[str, str]:
    """Each knowledge base with a registry on the Chroma server of ``client``: the id of its registry collection."""
    try:
        found = client.list_collections()
    except Exception as exc:  # chromadb and httpx raise many unrelated types
        raise StoreError(f"cannot list the knowledge bases on the Chroma server ({type(exc).__name__}: {exc}); "
                         "is it running?") from exc
    return {c.name[len(_PREFIX):-len(SUFFIX)]: str(c.id) for c in found
            if c.name.startswith(_PREFIX) and c.name.endswith(SUFFIX)}


def registry_id(client: Any, kb: str) -> str | None:
    """The id of knowledge base ``kb``'s registry collection on the Chroma server of ``client``; None if it has none.

    One lookup by name (:func:`registry_ids` lists every collection of the server).
    """
    from chromadb.errors import NotFoundError

    try:
        return str(client.get_collection(collection_name(kb), embedding_function=None).id)
    except NotFoundError:
        return None
    except Exception as exc:  # chromadb and httpx raise many unrelated types
        raise StoreError(f"cannot look up knowledge base {kb!r} on the Chroma server ({type(exc).__name__}: {exc}); "
                         "is it running?") from exc


def _stamp() -> str:
    return f"{time.time_ns()}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class _Record:
    """A document's record: the document, its status and the registry's bookkeeping."""

    doc: Document
    status: str
    replaces: str
    seq: str
    site: str
    written: float

    @classmethod
    def of(cls, meta: dict[str, Any]) -> "_Record":
        doc = Document(str(meta["doc_id"]), str(meta.get("source", "")), str(meta.get("title", "")),
                       int(meta.get("pages", 0)), int(meta.get("chunks", 0)), float(meta.get("added", 0.0)))
        return cls(doc, str(meta.get("status", "pending")), str(meta.get("replaces", "")), str(meta.get("seq", "")),
                   str(meta.get("site", "")), float(meta.get("written", 0.0)))

    def meta(self) -> dict[str, Any]:
        return {"kind": "doc", **asdict(self.doc), "status": self.status, "replaces": self.replaces, "seq": self.seq,
                "site": self.site, "written": self.written}


@dataclass(frozen=True)
class _View:
    """Every record of the registry as one ``get`` returned it (updated in place by this instance's writes)."""

    docs: dict[str, _Record]
    embed_model: str | None
    epoch: str

    # Computed once per view (a view is never changed, only replaced).
    @cached_property
    def committed(self) -> list[str]:
        return sorted(d for d, r in self.docs.items() if r.status == "committed")

    @cached_property
    def generation(self) -> int:
        h = hashlib.blake2b(self.epoch.encode(), digest_size=8)
        for doc_id in self.committed:
            h.update(f"\n{doc_id} {self.docs[doc_id].seq}".encode())
        return int.from_bytes(h.digest(), "big") >> 2

    @cached_property
    def in_flight_chunks(self) -> int:
        return sum(r.doc.chunks for r in self.docs.values() if r.status != "committed")


class ChromaManifest:
    """The registry of knowledge base ``kb`` on the Chroma server of ``client`` (see the module docstring).

    ``where`` names the server in messages, ``site`` this data dir (``host:path``),
    ``local`` the SQLite manifest to migrate from.
    """

    def __init__(
        self, client: Any, kb: str, where: str, site: str, local: Path | None = None, poll_s: float = POLL_S
    ) -> None:
        self.kb = kb
        self.client = client
        self.site = site
        self.poll_s = poll_s
        self._where = f"the document registry {collection_name(kb)} on {where}"
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._lock = threading.RLock()
        self._pinned = 0
        self._collection = self._call("open", lambda: client.get_or_create_collection(
            name=collection_name(kb), embedding_function=None))
        self.collection_id = str(self._collection.id)  # a knowledge base deleted and made anew has another
        self._clocks: dict[str, str] = {}
        self._polled = 0.0
        self._view = _View({}, None, "")
        self.existed = bool(self._call("count", self._collection.count))
        if not self.existed and local is not None and local.exists():
            self.existed = self._migrate(local)
        elif local is not None and local.exists():
            log.info("knowledge base %r: %s is not read, %s holds the documents", kb, local, self._where)
        with self._lock:
            self._load(self._prune_clocks())

    @property
    def where(self) -> str:
        return self._where

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except HopragError:
            raise
        except Exception as exc:  # chromadb and httpx raise many unrelated types
            raise StoreError(f"{self._where} failed ({what}: {type(exc).__name__}: {exc}); is the Chroma server "
                             "running?") from exc

    # ---- the view ------------------------------------------------------------------
    def _read_clocks(self) -> dict[str, str]:
        got = self._call("get clocks", lambda: self._collection.get(where={"kind": "clock"}, include=["metadatas"]))
        return {i: str((m or {}).get("value", "")) for i, m in zip(got["ids"], got["metadatas"])}

    def _prune_clocks(self) -> dict[str, str]:
        """Delete the clocks not written for ``CLOCK_TTL_S``; the others, as :meth:`_read_clocks` gives them."""
        got = self._call("get clocks", lambda: self._collection.get(where={"kind": "clock"}, include=["metadatas"]))
        old = [i for i, m in zip(got["ids"], got["metadatas"]) if time.time() - float((m or {}).get("written", 0)) >
               CLOCK_TTL_S]
        if old:
            self._call("delete clocks", lambda: self._collection.delete(ids=old))
        return {i: str((m or {}).get("value", "")) for i, m in zip(got["ids"], got["metadatas"]) if i not in old}

    def _load(self, clocks: dict[str, str] | None = None) -> None:
        """Read every record (the clocks first: a write they show is in the records read after)."""
        clocks = self._read_clocks() if clocks is None else clocks
        got = self._call("get", lambda: self._collection.get(include=["metadatas"]))
        docs: dict[str, _Record] = {}
        embed_model, epoch = None, ""
        for rid, meta in zip(got["ids"], got["metadatas"]):
            meta = meta or {}
            if rid.startswith("doc:"):
                docs[str(meta["doc_id"])] = _Record.of(meta)
            elif rid == "meta:embed_model":
                embed_model = str(meta["value"]) if meta.get("value") else None
            elif rid == "meta:epoch":
                epoch = str(meta.get("value", ""))
        self._view = _View(docs, embed_model, epoch)
        self._clocks = clocks
        self._polled = time.monotonic()

    def _poll(self) -> None:
        clocks = self._read_clocks()
        if clocks != self._clocks:
            self._load(clocks)
        self._polled = time.monotonic()

    def _current(self) -> _View:
        """The view, re-checked against the server if the last check is older than ``poll_s``."""
        if time.monotonic() - self._polled >= self.poll_s and self._lock.acquire(blocking=False):
            try:  # a write in progress (lock held by another thread, or pinned here) keeps its view
                if not self._pinned:
                    self._poll()
            finally:
                self._lock.release()
        return self._view

    def refresh(self) -> None:
        with self._lock:
            if not self._pinned:
                self._poll()

    def writing(self) -> ContextManager[None]:
        return self._writing()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        with self._lock:
            if not self._pinned:
                self._poll()
            self._pinned += 1
            try:
                yield
            finally:
                self._pinned -= 1

    # ---- reads -----------------------------------------------------------------------
    def documents(self, include_pending: bool = False) -> list[Document]:
        recs = [r.doc for r in self._current().docs.values() if include_pending or r.status == "committed"]
        return sorted(recs, key=lambda d: (d.added, d.source))

    def rows(self) -> list[DocumentRow]:
        return [DocumentRow(d, r.doc.source, r.doc.chunks, r.status) for d, r in self._current().docs.items()]

    def committed_ids(self) -> list[str]:
        return list(self._current().committed)

    def in_flight_ids(self) -> list[str]:
        """Documents an interrupted write left: ``deleting`` ones, and ``pending`` ones of this site or stale."""
        now = time.time()
        return [
            d for d, r in self._current().docs.items()
            if r.status == "deleting"
            or (r.status == "pending" and (r.site == self.site or now - r.written > STALE_PENDING_S))
        ]

    def in_flight_chunks(self) -> int:
        return self._current().in_flight_chunks

    def statuses(self, doc_ids: set[str]) -> dict[str, str]:
        docs = self._current().docs
        return {d: docs[d].status for d in doc_ids if d in docs}

    def status(self, doc_id: str) -> str | None:
        rec = self._current().docs.get(doc_id)
        return rec.status if rec else None

    def by_source(self, source: str) -> list[Document]:
        docs = self._current().docs.values()
        return [r.doc for r in docs if r.doc.source == source and r.status == "committed"]

    def generation(self) -> int:
        return self._current().generation

    def snapshot(self) -> tuple[int, list[str]]:
        view = self._current()
        return view.generation, list(view.committed)

    def embed_model(self) -> str | None:
        return self._current().embed_model

    # ---- writes ----------------------------------------------------------------------
    def _upsert(self, records: dict[str, dict[str, Any]]) -> None:
        self._call("upsert", lambda: upsert_batched(self.client, self._collection.upsert, ids=list(records),
                                                    metadatas=list(records.values()),
                                                    embeddings=[_VECTOR] * len(records)))

    def _write(
        self, change: Callable[[_View], tuple[_View, dict[str, dict[str, Any]], list[str]]], tick: bool = True
    ) -> None:
        """Apply ``change`` (the new view, records to upsert, record ids to delete) to the server, then tick the
        clock: records first, so a reader that sees the new clock value finds them. Without ``tick`` other
        readers learn of the change with the next one (each request to the server costs tens of ms)."""
        with self._lock:
            view, upserts, deletes = change(self._view)
            if upserts:
                self._upsert(upserts)
            if deletes:
                self._call("delete", lambda: self._collection.delete(ids=deletes))
            self._view = view
            if tick:
                value = _stamp()
                self._upsert({f"clock:{self.writer}": {"kind": "clock", "value": value, "written": time.time()}})
                self._clocks = {**self._clocks, f"clock:{self.writer}": value}

    def _set_status(self, view: _View, updates: dict[str, str]) -> tuple[_View, dict[str, dict[str, Any]]]:
        docs = dict(view.docs)
        records: dict[str, dict[str, Any]] = {}
        now = time.time()
        for doc_id, status in updates.items():
            rec = docs.get(doc_id)
            if rec is None:
                continue
            replaces = "" if status == "committed" else rec.replaces
            docs[doc_id] = rec = replace(rec, status=status, replaces=replaces, seq=_stamp(), written=now)
            records[f"doc:{doc_id}"] = rec.meta()
        return replace(view, docs=docs), records

    def record_embed_model(self, model_id: str) -> None:
        self._write(lambda v: (replace(v, embed_model=model_id),
                               {"meta:embed_model": {"kind": "meta", "value": model_id}}, []))

    def add_pending(self, doc: Document, replaces: Sequence[str] = ()) -> None:
        """A pending record (no clock tick: nothing visible changes, the commit's tick tells other readers)."""
        rec = _Record(doc, "pending", ",".join(replaces), _stamp(), self.site, time.time())
        self._write(lambda v: (replace(v, docs={**v.docs, doc.doc_id: rec}), {f"doc:{doc.doc_id}": rec.meta()}, []),
                    tick=False)

    def add_pending_many(self, docs: Sequence[Document]) -> None:
        now = time.time()
        recs = {d.doc_id: _Record(d, "pending", "", _stamp(), self.site, now) for d in docs}
        self._write(lambda v: (replace(v, docs={**v.docs, **recs}), {f"doc:{d}": r.meta() for d, r in recs.items()},
                               []), tick=False)

    def commit(self, doc_id: str, replaces: Sequence[str] = ()) -> None:
        """Make ``doc_id`` visible and ``replaces`` invisible in one upsert request."""
        def change(view: _View):
            new, records = self._set_status(view, {doc_id: "committed", **{o: "deleting" for o in replaces
                                                                           if o != doc_id}})
            return new, records, []
        self._write(change)

    def commit_many(self, doc_ids: Sequence[str]) -> None:
        self._write(lambda v: (*self._set_status(v, {d: "committed" for d in doc_ids}), []))

    def bump(self) -> None:
        epoch = _stamp()
        self._write(lambda v: (replace(v, epoch=epoch), {"meta:epoch": {"kind": "meta", "value": epoch}}, []))

    def mark_deleting(self, doc_id: str) -> bool:
        if doc_id not in self._current().docs:
            return False
        self._write(lambda v: (*self._set_status(v, {doc_id: "deleting"}), []))
        return True

    def remove(self, doc_id: str) -> None:
        self._write(lambda v: (replace(v, docs={d: r for d, r in v.docs.items() if d != doc_id}), {},
                               [f"doc:{doc_id}"]))

    def restore(self, doc_id: str, source: str, title: str, pages: int, chunks: int) -> None:
        now = time.time()
        rec = _Record(Document(doc_id, source, title, pages, chunks, now), "committed", "", _stamp(), self.site, now)
        self._write(lambda v: (replace(v, docs={**v.docs, doc_id: rec}), {f"doc:{doc_id}": rec.meta()}, []))

    def close(self) -> None:
        """Nothing to close: the Chroma client belongs to the vector store."""

    def drop(self) -> None:
        with self._lock:
            self._call("delete collection", lambda: self.client.delete_collection(collection_name(self.kb)))
            self._view = _View({}, None, "")

    # ---- migration -------------------------------------------------------------------
    def _migrate(self, local: Path) -> bool:
        """Copy the rows of the SQLite manifest ``local`` into the empty registry; rename the file. True if any."""
        old = Manifest(local, self.kb)
        try:
            status = {r.doc_id: r.status for r in old.rows()}
            docs = old.documents(include_pending=True)
            embed_model = old.embed_model()
        finally:
            old.close()
        if not docs and embed_model is None:
            return False
        now = time.time()
        records = {
            f"doc:{d.doc_id}": _Record(d, status[d.doc_id], "", _stamp(), self.site, now).meta()
            for d in docs
        }
        if embed_model is not None:
            records["meta:embed_model"] = {"kind": "meta", "value": embed_model}
        self._upsert(records)
        self._upsert({f"clock:{self.writer}": {"kind": "clock", "value": _stamp(), "written": now}})
        moved = local.with_name(local.name + ".migrated")
        for extra in ("-wal", "-shm", ""):
            if Path(str(local) + extra).exists():
                Path(str(local) + extra).rename(str(moved) + extra)
        log.info("knowledge base %r: copied %d documents from %s into %s; the local file is now %s",
                 self.kb, len(docs), local, self._where, moved)
        return True
