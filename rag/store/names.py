"""The name index of ``hops``, kept per chunk row in the lexical index's SQLite file and updated per document.

``names(name, row, title)`` lists the names each chunk mentions (``title`` when
the name is the chunk's title head) and ``name_df`` how many chunks mention each
name; triggers keep both in step with the chunk rows, so deleting a document
deletes its names in the same transaction. New rows get their names when a
reader next asks (:func:`name_index`): only the rows added since
(``state.names_row``). The extractor is the caller's (``hops`` owns what a name
is); when its version changes, the names are extracted again from every row.

:class:`NameView` answers the questions of :class:`rag.strategies.hops.NameIndex`
(``chunks``, ``rare``, ``links``, ``idf``, ``titled``) with indexed SQL queries. One
difference at scale: a name shared by more than :data:`MAX_POSTINGS` chunks links
nothing, whatever ``max_df`` allows (at a million chunks, ``hop_max_df`` = 0.05 would
let a name link 50,000 chunks: no bridge, and seconds of work per question).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Callable, Iterator

import numpy as np

from rag.store.lexical import NAMES_VERSION_KEY, ChunkTable
from rag.types import Chunk

Extract = Callable[[str], set[str]]
MAX_POSTINGS = 1000


def sync_names(table: ChunkTable, extract: Extract, head: Callable[[str], str], version: int) -> int:
    """Extract the names of the rows added since the last sync (of every row if ``version`` changed)."""
    with table.tx() as db:
        stored = db.execute("SELECT value FROM state WHERE key=?", (NAMES_VERSION_KEY,)).fetchone()
        if stored is None or int(stored[0]) != version:
            db.execute("DELETE FROM names")
            db.execute("DELETE FROM name_df")
            db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (NAMES_VERSION_KEY, version))
            db.execute("UPDATE state SET value=0 WHERE key='names_row'")
        done = int(db.execute("SELECT value FROM state WHERE key='names_row'").fetchone()[0])
        last = done
        while True:  # in batches: a million chunks' names do not fit in memory at once
            sql = "SELECT row, id, text, meta FROM chunks WHERE row > ? ORDER BY row LIMIT 20000"
            batch = db.execute(sql, (last,)).fetchall()
            if not batch:
                break
            added = []
            for row, cid, text, meta in batch:
                chunk = Chunk.from_metadata(cid, text, json.loads(meta))
                title = head(chunk.title) if chunk.title else None
                added += [(name, row, int(name == title)) for name in extract(chunk.embed_text)]
            db.executemany("INSERT INTO names VALUES (?,?,?)", added)
            last = batch[-1][0]
        db.execute("UPDATE state SET value=? WHERE key='names_row'", (last,))
        return last - done


class NameView:
    """The name index at one moment: rarity (IDF scaled to [0, 1]) and links between chunks sharing a rare name."""

    def __init__(self, table: ChunkTable) -> None:
        self.table = table
        self.n = int(table.db().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
        self.chunks = _Chunks(table)
        self.idf = _Idf(self)
        self.titled = _Titled(table)
        self._named: dict[str, tuple[int, list[tuple[str, int]]]] = {}
        self._posted: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}

    def scaled_idf(self, df: int) -> float:
        n = max(self.n, 1)
        return math.log(n / max(df, 1)) / math.log(n) if n > 1 else 0.0

    def df(self, name: str) -> int:
        got = self.table.db().execute("SELECT df FROM name_df WHERE name=?", (name,)).fetchone()
        return int(got[0]) if got else 0

    def rare(self, chunk_id: str, exclude: set[str], max_df: float) -> list[str]:
        """The names of ``chunk_id`` not in ``exclude`` that at most ``max_df`` of the chunks share."""
        return sorted(name for name, _ in self._rare(chunk_id, exclude, max_df))

    def _rare(self, chunk_id: str, exclude: set[str], max_df: float) -> list[tuple[str, int]]:
        limit = min(max(max_df * self.n, 2), MAX_POSTINGS)  # a name only two chunks share is always specific
        return [(name, df) for name, df in self._names(chunk_id)[1] if name not in exclude and df <= limit]

    def _names(self, chunk_id: str) -> tuple[int, list[tuple[str, int]]]:
        """The row of ``chunk_id`` (-1 when it mentions no name) and its names with their chunk counts."""
        if chunk_id not in self._named:
            sql = ("SELECT c.row, n.name, d.df FROM chunks c JOIN names n ON n.row = c.row "
                   "JOIN name_df d ON d.name = n.name WHERE c.id = ?")
            found = self.table.db().execute(sql, (chunk_id,)).fetchall()
            self._remember(self._named, chunk_id, (found[0][0] if found else -1, [(n, df) for _, n, df in found]))
        return self._named[chunk_id]

    def _postings(self, name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The chunks that mention ``name``: their ids, rows and whether ``name`` is their title."""
        if name not in self._posted:
            sql = "SELECT c.id, n.row, n.title FROM names n JOIN chunks c ON c.row = n.row WHERE n.name = ?"
            found = self.table.db().execute(sql, (name,)).fetchall()
            ids = [cid for cid, _, _ in found]
            rows = np.fromiter((row for _, row, _ in found), dtype=np.int64, count=len(found))
            titles = np.fromiter((bool(t) for _, _, t in found), dtype=bool, count=len(found))
            self._remember(self._posted, name, (ids, rows, titles))
        return self._posted[name]

    @staticmethod
    def _remember(cache: dict, key: str, value: object) -> None:
        if len(cache) > 50_000:  # a bounded memo per generation (a view lives for one generation)
            cache.clear()
        cache[key] = value

    def link_arrays(
        self, chunk_id: str, exclude: set[str], max_df: float, title_weight: float = 0.0
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """:meth:`links` as arrays: the linked chunks' ids, rows (ascending) and weights (float64).

        At a million chunks a parent links thousands of chunks (each name up to :data:`MAX_POSTINGS`),
        too many for Python work per link within a question's budget.
        """
        ids: list[str] = []
        rows, weights = [], []
        for name, df in self._rare(chunk_id, exclude, max_df):
            idf = self.scaled_idf(df)
            found, at, titles = self._postings(name)
            ids += found
            rows.append(at)
            weights.append(np.where(titles, idf * (1 + title_weight), idf) if title_weight else np.full(len(at), idf))
        if not ids:
            return [], np.zeros(0, np.int64), np.zeros(0, np.float64)
        row, weight = np.concatenate(rows), np.concatenate(weights)
        order = np.lexsort((-weight, row))  # by row, its best weight first
        first = np.ones(len(order), bool)
        first[1:] = row[order[1:]] != row[order[:-1]]
        pick = order[first]
        pick = pick[(weight[pick] > 0) & (row[pick] != self._names(chunk_id)[0])]  # not the parent itself
        return [ids[i] for i in pick.tolist()], row[pick], weight[pick]

    def links(self, chunk_id: str, exclude: set[str], max_df: float, title_weight: float = 0.0) -> dict[str, float]:
        """Chunks sharing a rare name with ``chunk_id`` → the best shared name's weight (IDF, times
        ``1 + title_weight`` when the name is the linked chunk's title)."""
        ids, _, weights = self.link_arrays(chunk_id, exclude, max_df, title_weight)
        return dict(zip(ids, weights.tolist()))


class _Chunks(Mapping):
    """Chunk id → chunk, read on demand."""

    def __init__(self, table: ChunkTable) -> None:
        self.table = table

    def __getitem__(self, chunk_id: str) -> Chunk:
        got = self.table.chunk_by_id(chunk_id)
        if got is None:
            raise KeyError(chunk_id)
        return got[1]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.ids())

    def __len__(self) -> int:
        return int(self.table.db().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])


class _Idf(Mapping):
    """Name → IDF scaled to [0, 1] (a name in one chunk scores 1)."""

    def __init__(self, view: NameView) -> None:
        self.view = view

    def __getitem__(self, name: str) -> float:
        df = self.view.df(name)
        if df <= 0:
            raise KeyError(name)
        return self.view.scaled_idf(df)

    def __iter__(self) -> Iterator[str]:
        return (r[0] for r in self.view.table.db().execute("SELECT name FROM name_df WHERE df > 0"))

    def __len__(self) -> int:
        return int(self.view.table.db().execute("SELECT COUNT(*) FROM name_df WHERE df > 0").fetchone()[0])


class _Titled(Mapping):
    """Name → the chunks whose title head it is."""

    def __init__(self, table: ChunkTable) -> None:
        self.table = table

    def __getitem__(self, name: str) -> list[str]:
        sql = "SELECT c.id FROM names n JOIN chunks c ON c.row = n.row WHERE n.name = ? AND n.title = 1"
        ids = [r[0] for r in self.table.db().execute(sql, (name,))]
        if not ids:
            raise KeyError(name)
        return ids

    def __iter__(self) -> Iterator[str]:
        return (r[0] for r in self.table.db().execute("SELECT DISTINCT name FROM names WHERE title = 1"))

    def __len__(self) -> int:
        return int(self.table.db().execute("SELECT COUNT(DISTINCT name) FROM names WHERE title = 1").fetchone()[0])
