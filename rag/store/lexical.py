"""The lexical index of a knowledge base: bm25s over chunk texts, saved per generation.

The manifest keeps a generation counter that every commit and delete bumps. An
index is saved in a folder named after the generation it was built at
(``gen-00000042``), written under a temporary name and renamed into place, so a
crash leaves either the old complete index or the new complete one. A reader
whose manifest generation has no folder rebuilds from the committed chunks in
the vector store: the index can lag behind the manifest but never disagree with it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rag.types import Chunk

log = logging.getLogger(__name__)

_CHUNKS_FILE = "chunks.jsonl"
_DONE_FILE = "done.json"
_STOPWORDS = "en"


def _bm25s():
    import bm25s

    # bm25s sets its logger to DEBUG on import ("Building index from tokens" on every rebuild).
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed word tokens (bm25s' tokenizer)."""
    return _bm25s().tokenize(list(texts), stopwords=_STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False)


@dataclass
class BM25Index:
    """A bm25s retriever plus the chunks it was built from, in index order."""

    generation: int
    chunks: list[Chunk]
    retriever: Any = None  # bm25s.BM25, None when there are no chunks

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.chunks]

    @classmethod
    def build(cls, chunks: Sequence[Chunk], generation: int) -> "BM25Index":
        """Index ``chunks`` (their situated text: title and section help keyword search too)."""
        bm25s = _bm25s()
        chunks = sorted(chunks, key=lambda c: c.id)
        retriever = None
        if chunks:
            retriever = bm25s.BM25()
            retriever.index(tokenize([c.embed_text for c in chunks]), show_progress=False)
        return cls(generation, chunks, retriever)

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """The BM25 score of every chunk (in ``self.chunks`` order) for already tokenized ``tokens``."""
        ids = self.retriever.get_tokens_ids(list(tokens)) if self.retriever is not None and tokens else []
        if not ids:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self.retriever.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, query: str, k: int, accept: Callable[[Chunk], bool] = lambda c: True) -> list[tuple[Chunk, float]]:
        """The ``k`` best-scoring accepted chunks with a positive score, best first."""
        if self.retriever is None or k < 1:
            return []
        tokens = tokenize([query])[0]
        ids = self.retriever.get_tokens_ids(tokens)
        if not ids:
            return []
        scores = np.asarray(self.retriever.get_scores_from_ids(ids), dtype=np.float32)
        out: list[tuple[Chunk, float]] = []
        # Stable order: score descending, then index order (chunk id) for ties.
        for i in np.argsort(-scores, kind="stable"):
            score = float(scores[i])
            if score <= 0:
                break
            if accept(self.chunks[i]):
                out.append((self.chunks[i], score))
                if len(out) == k:
                    break
        return out

    # ---- persistence -------------------------------------------------------------
    def save(self, root: Path) -> Path:
        """Write this index as ``root/gen-N`` atomically and drop older generations."""
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"gen-{self.generation:08d}"
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
        try:
            if self.retriever is not None:
                self.retriever.save(str(tmp), show_progress=False)
            with open(tmp / _CHUNKS_FILE, "w", encoding="utf-8") as fh:
                for c in self.chunks:
                    fh.write(json.dumps({"id": c.id, "text": c.text, "meta": c.metadata()}) + "\n")
            (tmp / _DONE_FILE).write_text(
                json.dumps({"generation": self.generation, "chunks": len(self.chunks)}), encoding="utf-8"
            )
            _fsync_dir(tmp)
            if final.exists():
                # A rebuild of the same generation replaces a (possibly corrupt) copy;
                # a reader in between finds no folder and rebuilds, which is only slower.
                old = Path(tempfile.mkdtemp(dir=root, prefix=".old-"))
                os.rename(final, old / final.name)
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.rename(tmp, final)
            except OSError:
                # Another process saved the same generation meanwhile; theirs is as good.
                if not (final / _DONE_FILE).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _fsync_dir(root)
        for old in root.glob("gen-*"):
            if old != final and old.name < final.name:
                shutil.rmtree(old, ignore_errors=True)
        return final

    @classmethod
    def load(cls, root: Path, generation: int) -> "BM25Index | None":
        """The index saved at ``generation``, or None if there is none.

        Raises ``ValueError``/``OSError`` when the folder exists but is unreadable.
        """
        bm25s = _bm25s()
        folder = root / f"gen-{generation:08d}"
        done = folder / _DONE_FILE
        if not done.exists():
            return None
        info = json.loads(done.read_text(encoding="utf-8"))
        chunks = []
        with open(folder / _CHUNKS_FILE, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                chunks.append(Chunk.from_metadata(row["id"], row["text"], row["meta"]))
        if info.get("generation") != generation or info.get("chunks") != len(chunks):
            raise ValueError(f"BM25 index {folder} is inconsistent with its done.json")
        retriever = None
        if chunks:
            retriever = bm25s.BM25.load(str(folder), show_progress=False)
            if int(retriever.scores["num_docs"]) != len(chunks):
                raise ValueError(f"BM25 index {folder} has {retriever.scores['num_docs']} rows for {len(chunks)} chunks")
        return cls(generation, chunks, retriever)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



class LexicalIndex:
    """The BM25 index of one knowledge base under ``root``: kept in memory, saved per generation, rebuilt when stale.

    ``committed`` returns the committed chunks and the manifest generation they
    stand for (read from the vector store), the input of a rebuild.
    """

    def __init__(self, root: Path, kb: str, committed: Callable[[], tuple[int, list[Chunk]]]) -> None:
        self.root = root
        self.kb = kb
        self._committed = committed
        self._index: BM25Index | None = None
        self._lock = threading.RLock()

    def rebuild(self) -> BM25Index:
        """Build the index from the committed chunks, save it and keep it."""
        with self._lock:
            generation, chunks = self._committed()
            index = BM25Index.build(chunks, generation)
            try:
                index.save(self.root)
            except OSError as exc:
                log.warning("could not save the BM25 index under %s (%s); it stays in memory", self.root, exc)
            log.info("rebuilt BM25 index of %r: %d chunks at generation %d", self.kb, len(chunks), generation)
            self._index = index
            return index

    def current(self, generation: int) -> BM25Index:
        """The index at ``generation``: cached, loaded from disk, or rebuilt."""
        with self._lock:
            if self._index is not None and self._index.generation == generation:
                return self._index
            try:
                index = self.saved(generation)
            except Exception as exc:  # a corrupt file: any parse error from json, numpy or bm25s
                log.warning("BM25 index of %r is unreadable (%s: %s); rebuilding it", self.kb, type(exc).__name__, exc)
                index = None
            if index is None:
                return self.rebuild()
            self._index = index
            return index

    def saved(self, generation: int) -> BM25Index | None:
        """The index saved at ``generation`` (None if there is none; raises if it is unreadable)."""
        return BM25Index.load(self.root, generation)

    def discard_saved(self) -> None:
        """Delete every saved generation (saved ones are never overwritten, so a corrupt one must go first)."""
        with self._lock:
            shutil.rmtree(self.root, ignore_errors=True)
            self._index = None


# ---- Chroma-style where clauses on chunk metadata -------------------------------
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def matches(where: dict[str, Any] | None, meta: dict[str, Any]) -> bool:
    """Whether chunk metadata ``meta`` satisfies the Chroma ``where`` clause.

    Supports what Chroma's metadata filters support: ``$and``/``$or`` lists and
    ``field: value`` or ``field: {op: value}`` with ``$eq $ne $gt $gte $lt $lte $in $nin``.
    Like Chroma, a comparison on a field the chunk lacks (a page of a text file) is false.
    """
    if not where:
        return True
    for key, cond in where.items():
        if key == "$and":
            if not all(matches(c, meta) for c in cond):
                return False
        elif key == "$or":
            if not any(matches(c, meta) for c in cond):
                return False
        else:
            if isinstance(cond, dict):
                for op, value in cond.items():
                    if op not in _OPS:
                        raise ValueError(f"unsupported where operator {op!r}; allowed: {', '.join(_OPS)}")
                    if key not in meta and op not in ("$ne", "$nin"):
                        return False
                    if not _OPS[op](meta.get(key), value):
                        return False
            elif meta.get(key) != cond or key not in meta:
                return False
    return True
