"""Chroma's HNSW graph comes from the hnsw_* settings: set when a collection is created, ef_search also on an
existing collection."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import ConfigError
from rag.store import Store
from rag.store.vectors import hnsw_configuration


def _hnsw(store: Store) -> dict:
    return store.collection.configuration["hnsw"]


def test_new_collection_gets_the_settings_graph(tmp_path) -> None:
    settings = Settings(data_dir=str(tmp_path), hnsw_max_neighbors=24, hnsw_ef_construction=150, hnsw_ef_search=120)
    store = Store.from_settings(settings)
    try:
        got = _hnsw(store)
        assert (got["max_neighbors"], got["ef_construction"], got["ef_search"], got["space"]) == (24, 150, 120, "cosine")
    finally:
        store.close()


def test_defaults_are_a_larger_graph_than_chromas() -> None:
    hnsw = hnsw_configuration(Settings())
    assert hnsw["max_neighbors"] > 16 and hnsw["ef_construction"] > 100 and hnsw["ef_search"] > 100


def test_existing_collection_keeps_its_graph_and_takes_the_new_ef_search(tmp_path) -> None:
    code = (
        "import sys, numpy as np; from pathlib import Path; from rag.store import Store; "
        "from rag.types import Chunk, Document; "
        "s = Store(Path(sys.argv[1]), 'kb', hnsw={'max_neighbors': 16, 'ef_construction': 100, 'ef_search': 100}); "
        "c = [Chunk(f'd:{i}', 'd', f'text {i}', 'd.md', title='d', index=i) for i in range(30)]; "
        "v = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32); "
        "s.add_document(Document('d', 'd.md', 'd', 1, 30, 0.0), c, v); s.close()"
    )
    # Written by another process, as an older hoprag would have (Chroma's default graph).
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "index")], check=True, timeout=120)
    store = Store(tmp_path / "index", "kb", hnsw={"max_neighbors": 48, "ef_construction": 300, "ef_search": 250})
    try:
        got = _hnsw(store)
        assert (got["max_neighbors"], got["ef_construction"], got["ef_search"]) == (16, 100, 250)
        hits = store.query(np.random.default_rng(0).normal(size=8).astype(np.float32), 5)
        assert len(hits) == 5
    finally:
        store.close()


@pytest.mark.parametrize("name", ["hnsw_max_neighbors", "hnsw_ef_construction", "hnsw_ef_search"])
def test_bad_values_name_the_setting(name) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings(**{name: 1 if name == "hnsw_max_neighbors" else 0})
