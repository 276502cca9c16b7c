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
    rows = store.manifest.rows()
    committed = {r.doc_id: (r.source, r.chunks) for r in rows if r.status == "committed"}
    for r in rows:
        if r.status != "committed":
            problems.append(f"document {r.doc_id} ({r.source}) is left '{r.status}' by an interrupted write: {fix}")
    for source, n in Counter(src for src, _ in committed.values()).items():
        if n > 1:
            problems.append(f"{n} committed documents share the source {source!r} (a replace was lost): {fix}")

    with store.locked():
        chunk_meta = store.vectors.metadata()
    by_doc: dict[str, list[int]] = {}
    for _, meta in chunk_meta:
        by_doc.setdefault(str(meta.get("doc_id", "")), []).append(int(meta.get("index", -1)))
    in_flight = {r.doc_id for r in rows if r.status != "committed"}
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
    committed_ids = {cid for cid, meta in chunk_meta if meta.get("doc_id") in committed}
    problems += _check_bm25(store, committed_ids, fix)
    return problems


def _check_bm25(store: Store, committed_ids: set[str], fix: str) -> list[str]:
    try:
        index = store.lexical.saved(store.generation())
    except Exception as exc:  # a corrupt file: any parse error
        return [f"the BM25 index under {store.lexical.root} is unreadable ({type(exc).__name__}): {fix}"]
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
    with store.write_lock():  # not while an ingest runs: its pending document is not a crash's
        return _repair(store)


def _repair(store: Store) -> dict[str, Any]:
    recovered = store.recover()
    restored: list[str] = []
    dropped: list[str] = []
    with store.locked(write=True):
        known = {r.doc_id for r in store.manifest.rows()}
        found: dict[str, list[dict[str, Any]]] = {}
        for _, meta in store.vectors.metadata():
            if meta.get("doc_id") not in known:
                found.setdefault(str(meta.get("doc_id", "")), []).append(meta)
        for doc_id, metas in found.items():
            source = str(metas[0].get("source", ""))
            if sorted(int(m.get("index", -1)) for m in metas) != list(range(len(metas))):
                store.vectors.delete_document(doc_id)  # a half-written document: re-ingest it
                dropped.append(source or doc_id)
                continue
            pages = len({m["page"] for m in metas if "page" in m}) or 1
            store.manifest.restore(doc_id, source, str(metas[0].get("title", "")), pages, len(metas))
            restored.append(source or doc_id)
    # A saved generation may describe another manifest (one set aside as unreadable) or be corrupt: drop them all.
    store.lexical.discard_saved()
    bm25_chunks = store.rebuild_bm25()
    return {
        "recovered": recovered,
        "restored": restored,
        "dropped": dropped,
        "bm25_chunks": bm25_chunks,
        "problems": check_consistency(store),
    }
