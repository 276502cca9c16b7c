"""Segmentation: :class:`~ingest.loaders.Loaded` → chunks within a token budget.

Two modes:
- ``structure``: Markdown-like documents are split at headings first (the
  heading path becomes the chunk's section), then recursively at paragraphs,
  lines, sentences and words until each piece fits the budget. PDF pages are
  split the same way, never across pages, so every chunk has one page.
  Markdown tables (from DOCX, PPTX, XLSX, CSV, HTML and PDF tables) are cut
  into groups of whole rows, each group repeating the header row, so a chunk
  is readable alone.
- ``fixed``: windows of about ``chunk_tokens`` tokens cut at word boundaries,
  ignoring structure.
Both use langchain-text-splitters with the embedder's tokenizer as the length.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

from rag.types import Chunk

from ingest.loaders import Loaded

MODES = ("structure", "fixed")
_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def segment(
    loaded: Loaded,
    doc_id: str,
    source: str,
    *,
    mode: str = "structure",
    chunk_tokens: int = 200,
    chunk_overlap: int = 30,
    count_tokens: Callable[[str], int] = lambda s: len(s.split()),
) -> list[Chunk]:
    """Split ``loaded`` into chunks with deterministic ids ``{doc_id}:{index}``."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

    if mode not in MODES:
        raise ValueError(f"segmentation mode {mode!r} is not one of {', '.join(MODES)}")
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_tokens,
        chunk_overlap=chunk_overlap,
        length_function=count_tokens,
        separators=_SEPARATORS if mode == "structure" else [" ", ""],
        keep_separator="end",
        strip_whitespace=True,
    )
    pieces: list[tuple[str, int | None, str, int]] = []  # text, page, section, start
    offset = 0
    for page in loaded.pages:
        sections: list[tuple[str, str]]
        if mode == "structure" and loaded.markdown_like:
            md = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True)
            sections = [
                (" > ".join(d.metadata[h] for _, h in _HEADERS if h in d.metadata), d.page_content)
                for d in md.split_text(page.text)
            ]
        else:
            sections = [(page.section, page.text)]
        cursor = 0
        for section, body in sections:
            for text, anchor in _split(body, splitter, mode, chunk_tokens, count_tokens):
                start = page.text.find(anchor[:80], cursor)
                if start < 0:
                    start = max(page.text.find(anchor[:80]), 0)
                else:
                    cursor = start + 1
                pieces.append((text, page.number, section, offset + start))
        offset += len(page.text) + 1
    return [
        Chunk(
            id=f"{doc_id}:{i:05d}",
            doc_id=doc_id,
            text=text,
            source=source,
            title=loaded.title,
            page=page,
            page_end=page,
            section=section,
            start=start,
            end=start + len(text),
            index=i,
        )
        for i, (text, page, section, start) in enumerate(pieces)
        if text.strip()
    ]


# Table row groups get a third of the chunk budget (2-4 rows of a typical table): with whole 200-token
# groups, a question about one cell of a 50-row table found its row group 2nd to 4th of 6 (MiniLM sees
# ten look-alike rows); with a third, first in XLSX, CSV, DOCX and PDF (hybrid; tests/ingest/test_ingest_formats.py).
TABLE_SHARE = 3
_TABLE_RULE = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$")


def _split(body: str, splitter, mode: str, chunk_tokens: int, count_tokens: Callable[[str], int]) -> Iterator[tuple[str, str]]:
    """Chunks of ``body`` with the text that locates each in the page (a table group: its first row)."""
    if mode != "structure" or "|" not in body:
        for text in splitter.split_text(body):
            yield text, text
        return
    lines = body.split("\n")
    prose: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1].strip()):
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            if prose:
                for text in splitter.split_text("\n".join(prose)):
                    yield text, text
                prose = []
            yield from _row_groups(lines[i : i + 2], lines[i + 2 : end], chunk_tokens // TABLE_SHARE, count_tokens)
            i = end
        else:
            prose.append(lines[i])
            i += 1
    if prose:
        for text in splitter.split_text("\n".join(prose)):
            yield text, text


def _row_groups(
    header: list[str], rows: list[str], chunk_tokens: int, count_tokens: Callable[[str], int]
) -> Iterator[tuple[str, str]]:
    """Whole rows packed up to ``chunk_tokens``, each group under the header row (a long row stands alone)."""
    head = "\n".join(header)
    budget = chunk_tokens - count_tokens(head)
    group: list[str] = []
    used = 0
    for row in rows:
        cost = count_tokens(row) + 1
        if group and used + cost > budget:
            yield head + "\n" + "\n".join(group), group[0]
            group, used = [], 0
        group.append(row)
        used += cost
    if group or not rows:
        yield head + ("\n" + "\n".join(group) if group else ""), group[0] if group else head
