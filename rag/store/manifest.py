"""The manifest of one knowledge base (SQLite): its documents, its generation and its embedder.

The manifest is the source of truth for which documents are visible. A
document's row is ``pending`` while its chunks are written to the vector store;
one transaction then makes it ``committed`` (and marks the document it replaces
``deleting``), so a query never sees half a document or a mix of old and new.
Every change of the committed set bumps the generation (the BM25 index records
the one it was built at). The ``info`` table records the embedder whose vectors
the knowledge base holds. With a Chroma server, :mod:`rag.store.registry` takes
its place (same interface, :class:`DocumentManifest`), so replicas share it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Protocol, Sequence, runtime_checkable

from rag.errors import StoreError
from rag.store.sqlite import LocalDB
from rag.types import Document

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    added REAL NOT NULL,
    status TEXT NOT NULL,          -- pending | committed | deleting
    replaces TEXT                  -- doc_id this one supersedes on commit
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL         -- 'generation': bumped whenever the committed set changes
);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
CREATE TABLE IF NOT EXISTS info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL            -- 'embed_model': the embedder whose vectors the vector store holds
);
"""

_DOC_COLUMNS = "doc_id, source, title, pages, chunks, added"


@dataclass(frozen=True)
class DocumentRow:
    """A manifest row as the consistency check reads it (any status)."""

    doc_id: str
    source: str
    chunks: int
    status: str


@runtime_checkable
class DocumentManifest(Protocol):
    """What :class:`~rag.store.Store` needs of a manifest: :class:`Manifest` (SQLite, embedded Chroma) or
    :class:`rag.store.registry.ChromaManifest` (a collection on the Chroma server, shared by replicas).

    Statuses are ``pending`` (invisible), ``committed`` (visible) and ``deleting``. ``generation()`` is an
    int that changes whenever the committed set changes (derived indexes record the one they stand for);
    only equality is meaningful. ``existed`` says whether the manifest held anything when opened.
    """

    kb: str
    existed: bool

    @property
    def where(self) -> str:
        """Where the manifest lives, for messages."""
        ...

    def documents(self, include_pending: bool = False) -> list[Document]: ...
    def rows(self) -> list["DocumentRow"]: ...
    def committed_ids(self) -> list[str]: ...
    def in_flight_ids(self) -> list[str]: ...
    def in_flight_chunks(self) -> int: ...
    def statuses(self, doc_ids: set[str]) -> dict[str, str]: ...
    def status(self, doc_id: str) -> str | None: ...
    def by_source(self, source: str) -> list[Document]: ...
    def generation(self) -> int: ...
    def snapshot(self) -> tuple[int, list[str]]: ...
    def embed_model(self) -> str | None: ...

    def refresh(self) -> None:
        """Make the next reads current (a writer about to decide from them)."""
        ...

    def writing(self) -> ContextManager[None]:
        """Around one write: its reads see no change but its own (the generation before and after it differ by
        exactly this write)."""
        ...

    def record_embed_model(self, model_id: str) -> None: ...
    def add_pending(self, doc: Document, replaces: Sequence[str] = ()) -> None: ...
    def add_pending_many(self, docs: Sequence[Document]) -> None: ...
    def commit(self, doc_id: str, replaces: Sequence[str] = ()) -> None: ...
    def commit_many(self, doc_ids: Sequence[str]) -> None: ...
    def bump(self) -> None: ...
    def mark_deleting(self, doc_id: str) -> bool: ...
    def remove(self, doc_id: str) -> None: ...
    def restore(self, doc_id: str, source: str, title: str, pages: int, chunks: int) -> None: ...
    def close(self) -> None: ...

    def drop(self) -> None:
        """Delete the whole manifest (the knowledge base is being deleted)."""
        ...


class Manifest:
    """The SQLite manifest at ``path``; one connection per thread."""

    def __init__(self, path: Path, kb: str) -> None:
        self.path = path
        self.kb = kb
        self._sql = LocalDB(path, 30, ("journal_mode=WAL", "synchronous=FULL"))
        self._db, self._tx = self._sql.conn, self._sql.tx
        self.existed = path.exists()
        try:
            self._db().executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the manifest {path} is unreadable ({exc}): rebuild it from the vector store with  "
                f"hoprag reindex --kb {kb}"
            ) from exc

    @property
    def where(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._sql.close()

    def drop(self) -> None:
        self.close()  # the file goes with the knowledge base's folder

    def refresh(self) -> None:
        """Nothing to do: every read asks SQLite."""

    def writing(self) -> ContextManager[None]:
        """Nothing to hold: the caller holds the index lock, the only way to write this file."""
        return contextlib.nullcontext()

    # ---- reads -------------------------------------------------------------------
    def documents(self, include_pending: bool = False) -> list[Document]:
        """Committed documents (or every row with ``include_pending``), oldest first."""
        sql = f"SELECT {_DOC_COLUMNS} FROM documents"
        sql += "" if include_pending else " WHERE status = 'committed'"
        return [Document(*row) for row in self._db().execute(sql + " ORDER BY added, source").fetchall()]

    def rows(self) -> list[DocumentRow]:
        """Every row, whatever its status."""
        return [DocumentRow(*r) for r in self._db().execute("SELECT doc_id, source, chunks, status FROM documents")]

    def committed_ids(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT doc_id FROM documents WHERE status='committed'")]

    def in_flight_ids(self) -> list[str]:
        """Documents an interrupted write left ``pending`` or ``deleting``."""
        sql = "SELECT doc_id FROM documents WHERE status IN ('pending','deleting')"
        return [r[0] for r in self._db().execute(sql).fetchall()]

    def in_flight_chunks(self) -> int:
        """How many chunks the documents in flight (pending or deleting) have."""
        sql = "SELECT COALESCE(SUM(chunks), 0) FROM documents WHERE status != 'committed'"
        return int(self._db().execute(sql).fetchone()[0])

    def statuses(self, doc_ids: set[str]) -> dict[str, str]:
        """The status of each of ``doc_ids`` that has a row."""
        ids = sorted(doc_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            sql = f"SELECT doc_id, status FROM documents WHERE doc_id IN ({','.join('?' * len(part))})"
            out.update(self._db().execute(sql, part).fetchall())
        return out

    def status(self, doc_id: str) -> str | None:
        row = self._db().execute("SELECT status FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return row[0] if row else None

    def by_source(self, source: str) -> list[Document]:
        rows = self._db().execute(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE source=? AND status='committed'", (source,)
        ).fetchall()
        return [Document(*row) for row in rows]

    def generation(self) -> int:
        """A counter bumped by every change of the committed set."""
        row = self._db().execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def snapshot(self) -> tuple[int, list[str]]:
        """The generation and the committed ids it stands for, read in one transaction."""
        db = self._db()
        db.execute("BEGIN")
        try:
            return self.generation(), self.committed_ids()
        finally:
            db.execute("COMMIT")

    def embed_model(self) -> str | None:
        """The embedder id whose vectors this knowledge base holds (None before the first ingest)."""
        row = self._db().execute("SELECT value FROM info WHERE key='embed_model'").fetchone()
        return row[0] if row else None

    # ---- writes ----------------------------------------------------------------------
    def record_embed_model(self, model_id: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO info VALUES ('embed_model', ?)", (model_id,))

    def add_pending(self, doc: Document, replaces: Sequence[str] = ()) -> None:
        """A row for ``doc``, invisible until :meth:`commit`."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,'pending',?)",
                (doc.doc_id, doc.source, doc.title, doc.pages, doc.chunks, doc.added, ",".join(replaces)),
            )

    def add_pending_many(self, docs: Sequence[Document]) -> None:
        """Rows for new documents ``docs``, invisible until :meth:`commit_many` (one transaction)."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,'pending','')",
                [(d.doc_id, d.source, d.title, d.pages, d.chunks, d.added) for d in docs],
            )

    def commit(self, doc_id: str, replaces: Sequence[str] = ()) -> None:
        """Make ``doc_id`` visible and ``replaces`` invisible in one transaction."""
        with self._tx() as db:
            db.execute("UPDATE documents SET status='committed', replaces=NULL WHERE doc_id=?", (doc_id,))
            for old in replaces:
                if old != doc_id:
                    db.execute("UPDATE documents SET status='deleting' WHERE doc_id=?", (old,))
            _bump(db)

    def commit_many(self, doc_ids: Sequence[str]) -> None:
        """Make the new documents ``doc_ids`` visible in one transaction (one generation)."""
        with self._tx() as db:
            sql = "UPDATE documents SET status='committed', replaces=NULL WHERE doc_id=?"
            db.executemany(sql, [(d,) for d in doc_ids])
            _bump(db)

    def bump(self) -> None:
        """A new generation with the same documents (a derived index was rebuilt: caches of the old one are stale)."""
        with self._tx() as db:
            _bump(db)

    def mark_deleting(self, doc_id: str) -> bool:
        """Hide ``doc_id`` (False if there is no such row)."""
        with self._tx() as db:
            if db.execute("UPDATE documents SET status='deleting' WHERE doc_id=?", (doc_id,)).rowcount == 0:
                return False
            _bump(db)
            return True

    def remove(self, doc_id: str) -> None:
        """Drop the row of ``doc_id`` (once its chunks are gone)."""
        with self._tx() as db:
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    def restore(self, doc_id: str, source: str, title: str, pages: int, chunks: int) -> None:
        """A committed row for a complete document found only in the vector store (reindex)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,'committed',NULL)",
                (doc_id, source, title, pages, chunks, time.time()),
            )
            _bump(db)


def _bump(db: sqlite3.Connection) -> None:
    db.execute("UPDATE meta SET value = value + 1 WHERE key='generation'")


def set_aside_if_unreadable(path: Path) -> Path | None:
    """Rename an unreadable manifest (and its WAL files) out of the way; return the new name, if any."""
    if not path.exists():
        return None
    try:
        with closing(sqlite3.connect(path)) as conn:
            ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        ok = False
    if ok:
        return None
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    path.rename(aside)
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)
    log.warning("manifest %s was unreadable; moved to %s", path, aside)
    return aside
