"""Consistency check of one knowledge base: manifest == Chroma == BM25.

Used by the crash tests, ``hoprag reindex --check`` and anyone who wants to
know whether an index can be trusted. Each problem is one line that says what
is wrong and the command that repairs it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rag.store import Store

FIX = "run  hoprag reindex --kb {kb}"


def check_consistency(store: Store) -> list[str]:
    """Problems found (empty list = consistent).

    Holds when: no document is left ``pending``/``deleting``; every chunk in
    Chroma belongs to a committed document; each committed document has
    exactly its ``chunks`` count of chunks with indices 0..n-1; no two committed
    documents share a source; and a saved BM25 index at the current generation
    holds exactly the committed chunk ids.
    """
    fix = FIX.format(kb=store.kb)
    problems: list[str] = []
    rows = store._db().execute("SELECT doc_id, source, chunks, status FROM documents").fetchall()
    committed = {doc_id: (source, n) for doc_id, source, n, status in rows if status == "committed"}
    for doc_id, source, _, status in rows:
        if status != "committed":
            problems.append(f"document {doc_id} ({source}) is left '{status}' by an interrupted write: {fix}")
    for source, n in Counter(src for src, _ in committed.values()).items():
        if n > 1:
            problems.append(f"{n} committed documents share the source {source!r} (a replace was lost): {fix}")

    with store.locked():
        res: dict[str, Any] = store.collection.get(include=["metadatas"])
    by_doc: dict[str, list[int]] = {}
    for cid, meta in zip(res["ids"], res["metadatas"]):
        by_doc.setdefault(str((meta or {}).get("doc_id", "")), []).append(int((meta or {}).get("index", -1)))
    in_flight = {doc_id for doc_id, _, _, status in rows if status != "committed"}
    for doc_id, indices in by_doc.items():
        if doc_id not in committed and doc_id not in in_flight:
            problems.append(f"{len(indices)} chunks in Chroma belong to no known document ({doc_id}): {fix}")
    for doc_id, (source, n) in committed.items():
        indices = sorted(by_doc.get(doc_id, []))
        if indices != list(range(n)):
            problems.append(
                f"document {doc_id} ({source}) should have chunks 0..{n - 1} in Chroma but has "
                f"{len(indices)} ({_summary(indices)}): re-ingest it or {fix}"
            )
    committed_ids = {cid for cid, meta in zip(res["ids"], res["metadatas"]) if (meta or {}).get("doc_id") in committed}
    problems += _check_bm25(store, committed_ids, fix)
    return problems


def _check_bm25(store: Store, committed_ids: set[str], fix: str) -> list[str]:
    if not hasattr(store, "bm25_dir"):
        return []
    from rag.bm25 import BM25Index

    try:
        index = BM25Index.load(store.bm25_dir, store.generation())
    except Exception as exc:  # a corrupt file: any parse error
        return [f"the BM25 index under {store.bm25_dir} is unreadable ({type(exc).__name__}): {fix}"]
    if index is None:
        return []  # none saved at this generation yet: the next hybrid query rebuilds it from Chroma
    ids = index.ids
    problems = []
    if len(ids) != len(set(ids)):
        problems.append(f"the BM25 index has duplicate chunk ids: {fix}")
    if set(ids) != committed_ids:
        missing, extra = committed_ids - set(ids), set(ids) - committed_ids
        problems.append(
            f"the BM25 index disagrees with Chroma ({len(missing)} chunks missing, {len(extra)} extra): {fix}"
        )
    return problems


def _summary(indices: list[int]) -> str:
    dup = sorted(i for i, n in Counter(indices).items() if n > 1)
    return f"duplicates {dup[:5]}" if dup else (f"indices {indices[:5]}..." if indices else "none")


def repair(store: Store) -> dict[str, Any]:
    """Bring the manifest and BM25 back in line with Chroma (what ``hoprag reindex`` does).

    Finishes interrupted writes (:meth:`Store.recover`), restores manifest rows
    for complete documents found only in Chroma (a lost or corrupt manifest),
    drops chunks of documents that are incomplete, rebuilds the BM25 index, and
    returns what it did plus the problems left (``problems``, empty when fixed).
    """
    import time

    from rag import store as store_module

    recovered = store.recover()
    restored: list[str] = []
    dropped: list[str] = []
    with store.locked(write=True):
        known = {r[0] for r in store._db().execute("SELECT doc_id FROM documents")}
        res = store.collection.get(include=["metadatas"])
        found: dict[str, list[dict[str, Any]]] = {}
        for meta in res["metadatas"]:
            meta = meta or {}
            if meta.get("doc_id") not in known:
                found.setdefault(str(meta.get("doc_id", "")), []).append(meta)
        for doc_id, metas in found.items():
            source = str(metas[0].get("source", ""))
            if sorted(int(m.get("index", -1)) for m in metas) != list(range(len(metas))):
                store.collection.delete(where={"doc_id": doc_id})  # a half-written document: re-ingest it
                dropped.append(source or doc_id)
                continue
            pages = len({m["page"] for m in metas if "page" in m}) or 1
            with store._tx() as db:
                db.execute(
                    "INSERT INTO documents VALUES (?,?,?,?,?,?,'committed',NULL)",
                    (doc_id, source, str(metas[0].get("title", "")), pages, len(metas), time.time()),
                )
                bump = getattr(store_module, "_bump", None)
                if bump is not None:
                    bump(db)
            restored.append(source or doc_id)
    bm25_chunks = None
    if hasattr(store, "rebuild_bm25"):
        import shutil

        # Saved generations are never overwritten, so a corrupt one must go before the rebuild.
        shutil.rmtree(store.bm25_dir, ignore_errors=True)
        bm25_chunks = store.rebuild_bm25()
    return {
        "recovered": recovered,
        "restored": restored,
        "dropped": dropped,
        "bm25_chunks": bm25_chunks,
        "problems": check_consistency(store),
    }
