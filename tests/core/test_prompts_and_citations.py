import pytest

from rag.errors import ConfigError
from rag.generate import build_prompt, cite
from rag.prompts import load_prompt, prompts_dir
from rag.types import Chunk, Hit


def _hit(i, text, page=None):
    return Hit(Chunk(id=f"d:{i}", doc_id="d", text=text, source=f"/x/doc{i}.md", page=page), score=1.0 - i / 10)


def test_answer_template_has_its_placeholders():
    text = load_prompt("answer")
    for name in ("{passages}", "{history}", "{question}"):
        assert name in text


def test_template_with_wrong_placeholders_is_refused(tmp_path, monkeypatch):
    import rag.prompts as prompts

    (tmp_path / "answer.txt").write_text("only {question}")
    monkeypatch.setattr(prompts, "prompts_dir", lambda: tmp_path)
    prompts.load_prompt.cache_clear()
    try:
        with pytest.raises(ConfigError, match="must have exactly"):
            prompts.load_prompt("answer")
    finally:
        prompts.load_prompt.cache_clear()
    assert prompts_dir().name == "prompts"


def test_prompt_layout_instructions_first_question_last():
    hits = [_hit(1, "Alpha is a letter.", page=2), _hit(2, "Beta follows alpha.")]
    prompt = build_prompt("What follows alpha?", hits, [("What is alpha?", "A letter [1].")]).text
    static = load_prompt("answer").split("{passages}")[0]
    assert prompt.startswith(static)
    assert prompt.index("[1] doc1.md, page 2") < prompt.index("[2] doc2.md") < prompt.index("What follows alpha?")
    assert prompt.rstrip().endswith("Question: What follows alpha?\nAnswer:")


def test_cite_maps_markers_and_drops_unknown(caplog):
    hits = [_hit(1, "Paris is in France."), _hit(2, "Berlin is in Germany.")]
    text, cites = cite("Berlin [2] and Paris [1, 7] [9].", hits)
    assert [c.number for c in cites] == [2, 1]
    assert cites[0].source == "/x/doc2.md" and cites[0].chunk_id == "d:2"
    assert "[9]" not in text and "[7]" not in text and "[1]" in text
    assert "not in the context" in caplog.text


def test_cite_infers_the_overlapping_passage_when_uncited():
    hits = [_hit(1, "Paris is in France."), _hit(2, "Berlin is the capital of Germany.")]
    _, cites = cite("The capital of Germany is Berlin.", hits)
    assert len(cites) == 1 and cites[0].number == 2 and cites[0].inferred
    assert cite("I don't know.", hits)[1] == ()


def test_passages_are_unwrapped_but_keep_paragraphs_and_lists():
    hit = _hit(1, "Start vLLM with\nprefix caching.\n\nNext paragraph\n- item one\n- item two")
    prompt = build_prompt("q?", [hit]).text
    assert "Start vLLM with prefix caching.\n\nNext paragraph\n- item one\n- item two" in prompt
