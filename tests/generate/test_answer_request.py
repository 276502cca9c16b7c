"""The answer request per engine kind: prompt form, stops, length; the frozen prompt types; multi-paragraph citations."""

from __future__ import annotations

import dataclasses

import pytest
from fakes import ScriptedEngine

from rag.config import Settings
from rag.generate import CHAT_STOP, STOP, answer_request, build_chat_prompt, build_prompt, cite, source_label
from rag.types import ChatPrompt, Chunk, Hit, Message, Prompt


def _hit(i: int, text: str) -> Hit:
    return Hit(Chunk(id=f"k{i}", doc_id=f"d{i}", text=text, source=f"/kb/doc{i}.md", page=i), 1.0)


HITS = [_hit(1, "Otters crack shellfish with stones."), _hit(2, "Etna is a volcano in Sicily.")]


def test_completion_engines_get_the_base_model_prompt_and_newline_stops():
    request = answer_request(ScriptedEngine(), "Where is Etna?", HITS, (), Settings())
    assert isinstance(request.prompt, Prompt) and request.stop == STOP and "\n" in request.stop
    assert request.prompt.text.endswith("Question: Where is Etna?\nAnswer:")
    assert request.max_tokens == 96  # the engine's default: the setting is 0
    assert answer_request(ScriptedEngine(), "q?", HITS, (), Settings(max_new_tokens=7)).max_tokens == 7


def test_chat_engines_get_messages_no_stops_and_their_own_length():
    engine = ScriptedEngine(takes_messages=True)
    engine.default_max_tokens = 1024
    request = answer_request(engine, "Where is Etna?", HITS, [("What do otters use?", "Stones [1].")], Settings())
    assert isinstance(request.prompt, ChatPrompt) and request.stop == CHAT_STOP == ()
    assert request.max_tokens == 1024
    roles = [m.role for m in request.prompt.messages]
    assert roles == ["system", "user", "assistant", "user"]
    system, user, assistant, last = request.prompt.messages
    assert "Markdown" in system.content and "[1]" in system.content
    assert user.content.startswith("Passages:") and user.content.endswith("Question: What do otters use?")
    assert "[1] doc1.md, page 1\nOtters crack" in user.content and "[2] doc2.md, page 2" in user.content
    assert assistant.content == "Stones [1]." and last.content == "Where is Etna?"


def test_not_an_engine_is_refused_by_name():
    class Half:
        name = "half"

        def stream(self, prompt, **kwargs):  # pragma: no cover
            yield ""

    with pytest.raises(TypeError, match="takes_messages, default_max_tokens"):
        answer_request(Half(), "q?", HITS, (), Settings())


def test_chat_prefix_is_byte_identical_across_turns():
    turn1 = build_chat_prompt("What do otters use?", HITS)
    turn2 = build_chat_prompt("Where is Etna?", HITS, [("What do otters use?", "Stones [1].")])
    assert turn2.messages[: len(turn1.messages)] == turn1.messages
    # A passage retrieved later goes after the earlier ones: the system message and the earlier passages stay put.
    more = build_chat_prompt("And bread?", [*HITS, _hit(3, "Sourdough uses wild yeast.")],
                             [("What do otters use?", "Stones [1].")])
    assert more.messages[0] == turn1.messages[0]
    block1 = turn1.messages[1].content.rsplit("\n\nQuestion:", 1)[0]
    assert more.messages[1].content.startswith(block1) and "[3] doc3.md" in more.messages[1].content


def test_prompts_are_frozen_values_not_strings():
    prompt = build_prompt("Where is Etna?", HITS)
    assert not isinstance(prompt, str) and isinstance(prompt.text, str)
    assert "".join(prompt.segments()) == prompt.text and set(prompt.snapshots) <= set(prompt.boundaries)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prompt.text = "changed"  # type: ignore[misc]
    assert Prompt("abc", (0, 1, 2, 9), (2, 5)).boundaries == (1, 2) and Prompt("abc", (1, 2), (2, 5)).snapshots == (2,)
    with pytest.raises(ValueError, match="roles"):
        ChatPrompt((Message("narrator", "x"),))


def test_completion_engines_refuse_chat_messages():
    from rag.engines.base import completion_text

    with pytest.raises(TypeError, match="takes completion prompts"):
        completion_text(build_chat_prompt("q?", HITS), "local")
    assert completion_text(Prompt("abc", (1,)), "local") == "abc" == completion_text("abc", "local")


def test_citations_are_found_in_any_paragraph_but_not_in_code():
    reply = (
        "Otters use tools.\n\nThey crack shellfish with stones [1].\n\n"
        "- Etna is in Sicily [2-3]\n- see also [1, 2]\n\n```\nx = shells[2]\n```\nand `a[9]` inline."
    )
    text, cites = cite(reply, HITS)
    assert [c.number for c in cites] == [1, 2] and not cites[0].inferred
    assert "x = shells[2]" in text and "`a[9]`" in text  # code untouched
    assert "Sicily [2]\n" in text  # [3] is outside the context: dropped from the range
    assert text.startswith("Otters use tools.\n\nThey crack shellfish with stones [1].")


def test_source_label_is_one_line():
    assert source_label("/kb/a\nb.md", 3, "Install\nguide") == "a b.md, page 3 (Install guide)"
    assert source_label("notes.txt") == "notes.txt"


def test_completion_prompts_repeat_the_key_sentences_right_before_the_question():
    keys = ((2, "Etna is a volcano\nin Sicily [7]."), (1, "Otters crack shellfish with stones."))
    request = answer_request(ScriptedEngine(), "Where is Etna?", HITS, [("What do otters use?", "Stones [1].")],
                             Settings(), keys)
    text = request.prompt.text
    assert text.endswith(
        "Key sentences:\n[2] Etna is a volcano in Sicily (7).\n[1] Otters crack shellfish with stones.\n"
        "Question: Where is Etna?\nAnswer:"
    )
    # They change every turn: the last snapshot (end of the history) is before them, the prefix is unchanged.
    plain = build_prompt("Where is Etna?", HITS, [("What do otters use?", "Stones [1].")])
    assert request.prompt.snapshots == plain.snapshots
    assert text[: request.prompt.snapshots[-1]] == plain.text[: plain.snapshots[-1]]
    assert text[request.prompt.snapshots[-1]:].startswith("Key sentences:")


def test_chat_prompts_take_no_key_sentences():
    engine = ScriptedEngine(takes_messages=True)
    with_keys = answer_request(engine, "Where is Etna?", HITS, (), Settings(), ((2, "Etna is a volcano in Sicily."),))
    assert with_keys.prompt == answer_request(engine, "Where is Etna?", HITS, (), Settings()).prompt
