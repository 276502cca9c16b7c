"""Untrusted text as safe HTML for the UI: answers as Markdown, passages with their evidence marked.

Model output is untrusted (a passage can steer the model), so an answer is
rendered with markdown-it-py with raw HTML off, then sanitised by nh3 with an
allow-list: lists, code, tables and emphasis render; ``<script>``, event
handlers and styles are gone; links keep only absolute http(s) URLs; images
become their alt text (a remote image would be fetched on display, which can
leak what the model was steered to put in its URL).

Everything returned here is one line of HTML inside a ``<div>``, so a Markdown
renderer that receives it (``st.markdown(..., unsafe_allow_html=True)``) sees
one raw HTML block and interprets none of the text inside it again.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any, Iterable, Sequence

from rag.extras import require

UNSUPPORTED_TITLE = "not supported by the sources"
UNSUPPORTED_STYLE = "opacity:0.7;text-decoration:underline wavy #d97706;text-underline-offset:3px"
UNSUPPORTED_MARK = "⚠"  # shown before each unsupported sentence (also for readers who never hover)
UNVERIFIED_TITLE = "not found in the cited passage"
UNVERIFIED_STYLE = "text-decoration:underline dotted #d97706;text-decoration-thickness:2px;text-underline-offset:3px"
MARK_STYLE = "background-color:rgba(255,214,0,0.45);color:inherit;padding:0 1px;border-radius:2px"

TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
        "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a",
    }
)
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
URL_SCHEMES = frozenset({"http", "https"})
# Private-use characters bracket unsupported sentences (and unverified words) between rendering and sanitising.
_OPEN, _CLOSE = "\ue000", "\ue001"
_WORD_OPEN, _WORD_CLOSE = "\ue002", "\ue003"
_MARKERS = _OPEN + _CLOSE + _WORD_OPEN + _WORD_CLOSE
# Markdown block syntax at a line start that a marker must not precede (it would stop being syntax).
_BLOCK_PREFIX = re.compile(r"[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+|#{1,6}[ \t]+|>[ \t]?|\|[ \t]*)")
_TAG_OR_TEXT = re.compile(r"(<[^>]*>)")
_ASCII_PUNCT = re.compile(r"[!-/:-@\[-`{-~]")


@lru_cache(maxsize=1)
def _parser() -> Any:
    markdown_it = require("markdown_it", "ui")
    md = markdown_it.MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])

    def image_as_text(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        alt = self.renderInlineAsText(tokens[idx].children or [], options, env)
        return html.escape(f"[image: {alt}]" if alt else "[image]", quote=False)

    md.add_render_rule("image", image_as_text)
    return md


@lru_cache(maxsize=1)
def _cleaner() -> Any:
    nh3 = require("nh3", "ui")
    return nh3.Cleaner(
        tags=set(TAGS),
        clean_content_tags={"script", "style"},
        attributes={k: set(v) for k, v in ATTRIBUTES.items()},
        attribute_filter=_keep_attribute,
        url_schemes=set(URL_SCHEMES),
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties={"text-align"},
        strip_comments=True,
    )


def _keep_attribute(tag: str, attr: str, value: str) -> str | None:
    if attr == "href":
        return value if value.lower().startswith(("http://", "https://")) else None
    return value


def sanitize(fragment: str) -> str:
    """Keep only the allow-listed tags and attributes of an HTML fragment; links only to http(s) URLs."""
    return _cleaner().clean(fragment)


def one_block(fragment: str, css_class: str = "hoprag-md") -> str:
    """Wrap HTML as one single-line ``<div>`` (newlines become character references, same rendering)."""
    return f'<div class="{css_class}">' + fragment.replace("\r", "").replace("\n", "&#10;") + "</div>"


def markdown_html(
    text: str,
    unsupported: Iterable[tuple[int, int]] = (),
    literal: Iterable[tuple[int, int]] = (),
    unverified: Iterable[tuple[int, int]] = (),
) -> str:
    """Render untrusted Markdown ``text`` as safe, single-block HTML.

    ``unsupported`` are (start, end) character ranges of ``text`` (answer
    sentences the sources do not support): their words are wrapped in a
    muted, wavy-underlined span titled "not supported by the sources" with a
    ⚠ before each sentence. ``literal`` ranges (quotations of document text)
    are shown as written: ``P*A = L*U`` stays that, not an emphasis.
    ``unverified`` ranges (words of a supported sentence that its passage does
    not contain) get a dotted underline titled "not found in the cited passage".
    """
    text = "".join(ch for ch in text if ch not in _MARKERS)
    ranges = _clip(unsupported, len(text))
    words = [w for w in _clip(unverified, len(text)) if not any(s < w[1] and w[0] < e for s, e in ranges)]
    quotes = _clip(literal, len(text))
    if quotes:
        text, where = _escape_ranges(text, quotes)
        ranges = [(where[s], where[e]) for s, e in ranges]
        words = [(where[s], where[e]) for s, e in words]
    marked = sorted([(s, e, _OPEN, _CLOSE) for s, e in ranges] + [(s, e, _WORD_OPEN, _WORD_CLOSE) for s, e in words])
    source = _bracket(text, marked) if marked else text
    rendered = sanitize(_parser().render(source))
    if marked:
        rendered = _wrap_marked(rendered)
    return one_block(_shortcodes_off(rendered))


def passage_html(text: str, spans: Iterable[Any] = ()) -> str:
    """A passage as literal text (HTML-escaped) with its evidence ``spans`` (objects with start/end) in ``<mark>``."""
    ranges = _clip(((s.start, s.end) for s in spans), len(text))
    out: list[str] = []
    pos = 0
    for start, end in ranges:
        out.append(_escape_text(text[pos:start]))
        out.append(f'<mark style="{MARK_STYLE}">{_escape_text(text[start:end])}</mark>')
        pos = end
    out.append(_escape_text(text[pos:]))
    return one_block("".join(out), "hoprag-passage")


def escape_html_text(text: str) -> str:
    """Plain text as HTML: escaped, line breaks kept (as <br>), no Markdown or LaTeX meaning left."""
    return _escape_text(text)


# ---- internals -------------------------------------------------------------------------------
def _escape_text(text: str) -> str:
    # $ and : would start LaTeX or emoji/colour shortcodes in a Markdown renderer that saw the text.
    escaped = html.escape(text, quote=True).replace("$", "&#36;").replace(":", "&#58;")
    return escaped.replace("\r", "").replace("\n", "<br>")


def _shortcodes_off(fragment: str) -> str:
    """Write ``:`` and ``$`` in text (not in tags) as character references.

    Streamlit rewrites ``:material/…:`` shortcodes even inside raw HTML; the
    references keep the model's text exactly as written.
    """
    return "".join(
        part if part.startswith("<") else part.replace(":", "&#58;").replace("$", "&#36;")
        for part in _TAG_OR_TEXT.split(fragment)
    )


def _clip(ranges: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Ranges within [0, length], sorted, empty ones dropped, overlaps merged."""
    spans = sorted((max(0, int(s)), min(length, int(e))) for s, e in ranges)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _escape_ranges(text: str, ranges: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """Backslash-escape ASCII punctuation inside ``ranges`` (CommonMark then shows it literally).

    Returns the new text and, for every offset 0..len(text) of the old one, its offset in the new.
    """
    inside = [False] * len(text)
    for start, end in ranges:
        inside[start:end] = [True] * (end - start)
    out: list[str] = []
    where: list[int] = []
    size = 0
    for ch, quoted in zip(text, inside):
        where.append(size)
        piece = "\\" + ch if quoted and _ASCII_PUNCT.match(ch) else ch
        out.append(piece)
        size += len(piece)
    where.append(size)
    return "".join(out), where


def _bracket(text: str, ranges: list[tuple[int, int, str, str]]) -> str:
    """Insert each range's private-use markers around it, after any list/heading/quote syntax at a line start."""
    out: list[str] = []
    pos = 0
    for start, end, opening, closing in ranges:
        line_start = text.rfind("\n", 0, start) + 1
        if not text[line_start:start].strip():
            prefix = _BLOCK_PREFIX.match(text, line_start)
            while prefix and prefix.end() > line_start and prefix.end() <= end:
                start = max(start, prefix.end())
                line_start = prefix.end()
                prefix = _BLOCK_PREFIX.match(text, line_start)
        # the closing marker goes after the sentence's last visible character
        while end > start and text[end - 1].isspace():
            end -= 1
        out.append(text[pos:start])
        out.append(opening + text[start:end] + closing)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _wrap_marked(rendered: str) -> str:
    """Replace the markers by spans around each text run between them (never across tags, so nesting stays valid)."""
    out: list[str] = []
    inside = ""
    for part in _TAG_OR_TEXT.split(rendered):
        if not part:
            continue
        if part.startswith("<"):
            out.append(part)
            continue
        for piece in re.split(f"([{_MARKERS}])", part):
            if piece == _OPEN:
                inside = "unsupported"
                out.append(f'<span class="hoprag-unsupported" title="{UNSUPPORTED_TITLE}">{UNSUPPORTED_MARK} </span>')
            elif piece == _WORD_OPEN:
                inside = "unverified"
            elif piece in (_CLOSE, _WORD_CLOSE):
                inside = ""
            elif piece:
                if inside == "unsupported" and piece.strip():
                    out.append(
                        f'<span class="hoprag-unsupported" title="{UNSUPPORTED_TITLE}" '
                        f'style="{UNSUPPORTED_STYLE}">{piece}</span>'
                    )
                elif inside == "unverified" and piece.strip():
                    out.append(
                        f'<span class="hoprag-unverified" title="{UNVERIFIED_TITLE}" '
                        f'style="{UNVERIFIED_STYLE}">{piece}</span>'
                    )
                else:
                    out.append(piece)
    return "".join(out)
