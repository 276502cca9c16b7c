"""Sentence splitting of passage texts: offsets, PDF hard wraps, option lists, bullets, code, cache."""

from __future__ import annotations

from rag.evidence.sentences import MAX_CHARS, candidate_sentences, split_sentences, split_spans

PDF_PAGE = """Chapter 2: Getting Started 17
--persist
Go to interactive mode after --eval or reading from a file named on the command line.
--silent
--quiet
-q Don't print the usual greeting and version message at startup.
When doing integer division Octave will round the result to the nearest integer. This is
different from most programming languages, where the result is often floored to the nearest
integer. So, the result of int32 (5) ./ int32 (8) is 1.
idivide (x, y, op)
Integer division with different rounding rules."""


def test_offsets_are_slices_of_the_text():
    text = "Mount Etna is on Sicily.  It is 3,357 m tall!\n\nDon\u2019t climb it \u2014 it erupts."
    spans = split_spans(text)
    assert [text[a:b] for a, b in spans] == ["Mount Etna is on Sicily.", "It is 3,357 m tall!", "Don\u2019t climb it \u2014 it erupts."]


def test_hard_wrapped_pdf_lines_join_and_option_names_stay_with_their_description():
    sentences = split_sentences(PDF_PAGE)
    assert "--silent\n--quiet\n-q Don't print the usual greeting and version message at startup." in sentences
    # A sentence wrapped over three lines is one sentence; the next one starts after its full stop.
    assert any(s.startswith("This is\ndifferent") and s.endswith("nearest\ninteger.") for s in sentences)
    assert "So, the result of int32 (5) ./ int32 (8) is 1." in sentences
    # A usage line stays with the description below it.
    assert "idivide (x, y, op)\nInteger division with different rounding rules." in sentences
    # Short lines without a stop (a running head, an option name) lead into the sentence they precede.
    assert any(
        s.endswith("--persist\nGo to interactive mode after --eval or reading from a file named on the command line.")
        for s in sentences
    )


def test_bullets_start_new_sentences_and_long_runs_are_cut():
    text = (
        "The options are:\n\u2022 collapsedelimiters which may take the value of true or false\n"
        "\u2022 a second item that is long enough to stand alone here\n- x\n- y"
    )
    sentences = split_sentences(text)
    assert "\u2022 collapsedelimiters which may take the value of true or false" in sentences
    assert "\u2022 a second item that is long enough to stand alone here\n- x\n- y" in sentences  # tiny items join
    long = " ".join(["word"] * 400)
    assert all(b - a <= MAX_CHARS for a, b in split_spans(long))
    assert "".join(long[a:b] for a, b in split_spans(long)).replace(" ", "") == long.replace(" ", "")


def test_candidate_sentences_cover_every_hit_in_order(hit):
    hits = [hit("Alpha one. Alpha two.", "A", 0), hit("Beta one.", "B", 1)]
    cands = candidate_sentences(hits)
    assert [(c.hit, c.text) for c in cands] == [(0, "Alpha one."), (0, "Alpha two."), (1, "Beta one.")]
    for c in cands:
        assert hits[c.hit].chunk.text[c.start:c.end] == c.text


def test_split_is_cached_per_text():
    split_spans.cache_clear()
    split_spans(PDF_PAGE)
    split_spans(PDF_PAGE)
    assert split_spans.cache_info().hits == 1


def test_empty_and_whitespace_text():
    assert split_spans("") == ()
    assert split_spans(" \n \n") == ()
