"""Loading MuSiQue-style datasets and the cached throwaway knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import CountingEmbedder

from rag import ConfigError, Settings
from rag.eval.dataset import eval_kb, hit_ids, load_dataset, passage_key


def test_load_matches_gold_by_title_and_text(tiny_dir):
    ds = load_dataset(tiny_dir)
    assert len(ds.passages) == 6 and len(ds.questions) == 4
    q3 = ds.questions[2]
    assert [ds.passage(g).title for g in q3.gold] == ["Zorblax Records", "Mirela Vantongeren"]
    assert q3.answers == ("bassoon", "the bassoon")
    assert [h.chunk.title for h in ds.gold_hits(q3)] == ["Zorblax Records", "Mirela Vantongeren"]
    assert hit_ids(ds.gold_hits(q3)) == list(q3.gold)
    assert len(ds.limit(2).questions) == 2 and ds.limit(2).digest == ds.digest


def _write(folder: Path, corpus, questions) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.json").write_text(json.dumps(corpus))
    (folder / "questions.json").write_text(json.dumps(questions))
    return folder


def test_duplicates_and_same_titles(tmp_path):
    corpus = [{"title": "T", "text": "one"}, {"title": "T", "text": "two"}, {"title": "T", "text": "one"}]
    question = {
        "id": "q",
        "question": "?",
        "answer": "x",
        "paragraphs": [{"title": "T", "paragraph_text": "two", "is_supporting": True}],
    }
    ds = load_dataset(_write(tmp_path / "d", corpus, [question]))
    assert len(ds.passages) == 2  # (title, text) is the key: same title, different text are two passages
    assert ds.questions[0].gold == (passage_key("T", "two"),)


def test_bad_datasets_name_the_problem(tmp_path, tiny_dir):
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset(tmp_path / "missing")
    question = {"id": "q", "question": "?", "answer": "x",
                "paragraphs": [{"title": "Gone", "paragraph_text": "nope", "is_supporting": True}]}
    with pytest.raises(ConfigError, match="'Gone' is not in corpus.json"):
        load_dataset(_write(tmp_path / "d1", [{"title": "T", "text": "one"}], [question]))
    with pytest.raises(ConfigError, match="needs 'title' and 'text'"):
        load_dataset(_write(tmp_path / "d2", [{"name": "T"}], []))
    (tmp_path / "d3").mkdir()
    (tmp_path / "d3" / "corpus.json").write_text("[")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_dataset(tmp_path / "d3")
    with pytest.raises(ConfigError, match="at least 1"):
        load_dataset(tiny_dir, limit=0)


def test_eval_kb_is_built_once_and_cached_by_content(tiny_dir, tmp_path, embedder):
    ds = load_dataset(tiny_dir)
    settings = Settings(data_dir=str(tmp_path))
    counting = CountingEmbedder(embedder)
    with eval_kb(ds, settings, embedder=counting) as rag:
        assert rag.store.count() == 6 and counting.texts == 6
        first_dir = rag.settings.data_dir
    with eval_kb(ds, settings, embedder=counting) as rag:
        assert rag.settings.data_dir == first_dir
        assert counting.texts == 6  # nothing re-embedded
        top = rag.retrieve(ds.questions[0].question, 1)
        assert hit_ids(top) == list(ds.questions[0].gold)
    assert Path(first_dir).parent == tmp_path / "eval"
