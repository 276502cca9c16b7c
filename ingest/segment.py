"""Segmentation: :class:`~ingest.loaders.Loaded` → chunks within a token budget.

Two modes:
- ``structure``: Markdown-like documents are split at headings first (the
  heading path becomes the chunk's section), then recursively at paragraphs,
  lines, sentences and words until each piece fits the budget. PDF pages are
  split the same way, never across pages, so every chunk has one page.
- ``fixed``: windows of about ``chunk_tokens`` tokens cut at word boundaries,
  ignoring structure.
Both use langchain-text-splitters with the embedder's tokenizer as the length.
"""

from __future__ import annotations

from typing import Callable

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
            for text in splitter.split_text(body):
                start = page.text.find(text[:80], cursor)
                if start < 0:
                    start = max(page.text.find(text[:80]), 0)
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
