"""rag.safe_markdown: untrusted answers and passages as safe HTML (the sanitiser tested directly)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("nh3", reason="the UI's Markdown sanitiser needs the 'ui' extra: pip install 'hoprag[ui]'")

from rag.safe_markdown import markdown_html, one_block, passage_html, sanitize  # noqa: E402
from rag.types import Span  # noqa: E402

ATTACKS = (
    "<script>alert(1)</script>\n\n"
    "[click](javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:msgbox) "
    "[rel](/_stcore/health) [mail](mailto:a@b.c)\n\n"
    "![tracker](http://203.0.113.1/leak?q=secret) ![](https://203.0.113.2/x.png)\n\n"
    '<img src="http://203.0.113.3/x" onerror="alert(1)"> <iframe src="https://203.0.113.4"></iframe>\n\n'
    '<a href="javascript:alert(2)" onclick="alert(3)">x</a> <style>body{background:url(http://203.0.113.5)}</style>\n\n'
    "[ref][r]\n\n[r]: javascript:alert(4)\n\n"
    "[fine](https://example.org/a?b=1) <https://example.org/auto>"
)


def elements(fragment: str) -> list[str]:
    """The real start tags of an HTML fragment (escaped markup is text and does not count)."""
    return re.findall(r"<[a-zA-Z][^>]*>", fragment)


def test_markdown_structure_renders():
    out = markdown_html(
        "# Title\n\nSome *emphasis*, **strong**, ~~gone~~ and `code`.\n\n- one\n- two\n\n3. three\n4. four\n\n"
        "> quoted\n\n```python\ndef f():\n\n    return 1\n```\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n"
    )
    for piece in ("<h1>Title</h1>", "<em>emphasis</em>", "<strong>strong</strong>", "<s>gone</s>",
                  "<code>code</code>", "<ul>", "<li>one</li>", '<ol start="3">', "<blockquote>",
                  "<pre><code>def f()&#58;&#10;&#10;    return 1&#10;</code></pre>", "<table>",
                  '<th style="text-align:left">a</th>', '<td style="text-align:right">2</td>'):
        assert piece in out, (piece, out)
    assert "\n" not in out and out.startswith('<div class="hoprag-md">') and out.endswith("</div>")


def test_attacks_render_inert():
    out = markdown_html(ATTACKS)
    tags = elements(out)
    assert not [t for t in tags if re.match(r"<(script|img|iframe|style|object|embed|svg)\b", t)], tags
    assert not [t for t in tags if re.search(r"\s(src|srcset|style|on\w+)\s*=", t) and not t.startswith(("<th", "<td"))]
    hrefs = [h for t in tags for h in re.findall(r'href="([^"]*)"', t)]
    assert hrefs == ["https://example.org/a?b=1", "https://example.org/auto"], hrefs
    assert all('rel="noopener noreferrer nofollow"' in t for t in tags if t.startswith("<a "))
    # no remote address is left anywhere a browser would fetch it, and images say what they were
    assert "203.0.113" not in " ".join(tags)
    assert "[image&#58; tracker]" in out and "[image]" in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out  # the model's markup is shown as text


def test_sanitize_strips_raw_html_directly():
    dirty = (
        '<p onclick="x()">hi <b>bold</b><script>alert(1)</script><img src=x onerror=alert(1)>'
        '<a href="javascript:alert(1)">js</a><a href="https://ok.example/">ok</a><a href="/rel">rel</a>'
        '<table><tr><td style="text-align:center;background:url(http://203.0.113.1)">c</td></tr></table>'
        "<iframe src=https://203.0.113.2></iframe><style>*{}</style><!-- note --></p>"
    )
    out = sanitize(dirty)
    assert "script" not in out and "alert(1)" not in out and "<img" not in out and "iframe" not in out
    assert "onclick" not in out and "<!--" not in out and "<b>" not in out and "bold" in out
    assert re.findall(r'href="([^"]*)"', out) == ["https://ok.example/"]
    assert '<td style="text-align:center">c</td>' in out and "203.0.113" not in out


def test_unsupported_sentences_are_marked_without_breaking_markdown():
    text = "Fine sentence. Wrong one.\n\n- good item\n- **bad** item\n\n1. first\n2. second wrong\n"
    wrong = (text.index("Wrong"), text.index("one.") + 4)
    bad = (text.index("- **bad**"), text.index("bad** item") + 10)  # from the line start: the list must survive
    second = (text.index("second"), len(text))
    out = markdown_html(text, [wrong, bad, second, (900, 1000), (5, 5)])
    marked = re.findall(r'<span class="hoprag-unsupported" title="not supported by the sources"[^>]*>([^<]*)</span>',
                        out)
    assert marked.count("⚠ ") == 3
    assert "Wrong one." in marked and "bad" in marked and " item" in marked and "second wrong" in marked
    assert "<li><span" in out and "<strong><span" in out  # list and emphasis kept, spans inside them
    assert "<ul>" in out and "<ol>" in out and "Fine sentence." not in marked
    # nesting stays valid: spans only wrap text, so each closes right where it opened
    assert not re.search(r"<span[^>]*>[^<]*<(?!/span>)", out) and out.count("<span") == out.count("</span>")


def test_unsupported_markers_cannot_be_forged():
    out = markdown_html("plain \ue000text\ue001 here")
    assert "hoprag-unsupported" not in out and "plain text here" in out


def test_unverified_words_get_a_dotted_underline_inside_markdown():
    text = "Otters eat **crabs** and *other* animals [1].\n\n- also fish\n\nWrong one.\n"
    spans = [(text.index("crabs"), text.index("crabs") + 5), (text.index("animals"), text.index("animals") + 7),
             (text.index("fish"), text.index("fish") + 4), (text.index("one"), text.index("one") + 3)]
    wrong = (text.index("Wrong"), len(text) - 1)
    out = markdown_html(text, [wrong], unverified=spans)
    marked = re.findall(r'<span class="hoprag-unverified" title="not found in the cited passage"[^>]*>([^<]*)</span>',
                        out)
    # inside an unsupported sentence the whole sentence is marked instead
    assert marked == ["crabs", "animals", "fish"]
    assert "<strong><span" in out and "<em>other</em>" in out and "<li>also <span" in out
    assert out.count("<span") == out.count("</span>")
    assert "hoprag-unverified" not in markdown_html("plain \ue002text\ue003 here")  # markers cannot be forged


def test_passage_html_marks_evidence_and_escapes_everything():
    text = "Intro <b>x</b> & $y$ :red[z].\nThe code is BLUE-42. Tail."
    start = text.index("The code")
    out = passage_html(text, [Span(start, start + len("The code is BLUE-42.")), Span(0, 5), Span(40, 400)])
    assert re.findall(r"<mark[^>]*>([^<]*)</mark>", out) == ["Intro", "The code is BLUE-42. Tail."]
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &#36;y&#36; &#58;red[z].<br>" in out
    assert elements(out) == [elements(out)[0]] + [t for t in elements(out)[1:] if t.startswith(("<mark", "<br"))]


def test_one_block_has_no_line_breaks():
    expected = '<div class="hoprag-md"><pre><code>a&#10;&#10;b</code></pre></div>'
    assert one_block("<pre><code>a\n\nb</code></pre>") == expected


def test_quotations_are_shown_as_written():
    from rag.ui_support import quoted_ranges

    text = "The documents say: “Call [L, U, P] = lu (A) so that P*A = L*U.” [1] It is *fast*. It is free."
    wrong = (text.index("It is free"), len(text))
    out = markdown_html(text, [wrong], quoted_ranges(text))
    assert "“Call [L, U, P] = lu (A) so that P*A = L*U.” [1]" in out  # no emphasis, no link syntax eaten
    assert "<em>fast</em>" in out  # the model's own Markdown outside the quotation still renders
    assert re.search(r'style="[^"]*">It is free\.</span>', out)  # the unsupported range moved with the escapes
    assert quoted_ranges("no quotes “one” and “two”") == [(10, 15), (20, 25)]


def test_streamlit_shortcodes_and_math_stay_text():
    out = markdown_html("Icon :material/home:, colour :red[x], math $y$ and [a link](https://example.org/a:b).")
    assert ":" not in re.sub(r"<[^>]*>", "", out) and "$" not in out
    assert "&#58;material/home&#58;" in out and "&#36;y&#36;" in out
    assert '<a href="https://example.org/a:b"' in out  # attributes are left alone
