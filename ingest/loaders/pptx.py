"""PPTX: one page per slide (title, text boxes top to bottom, tables as Markdown), then its speaker notes."""

from __future__ import annotations

import io

from rag.errors import IngestError

from ingest.loaders.base import (
    LOADERS,
    Loaded,
    LoadOptions,
    Page,
    PageProgress,
    check_zip,
    clean_text,
    markdown_table,
    stem_title,
)


@LOADERS.register("pptx")
def load_pptx(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    from pptx import Presentation

    check_zip(data, "PPTX")
    try:
        deck = Presentation(io.BytesIO(data))
    except Exception as exc:  # python-pptx raises lxml, KeyError and zip errors
        raise IngestError(f"corrupt PPTX ({type(exc).__name__})") from exc
    pages = []
    for number, slide in enumerate(deck.slides, 1):
        title_shape = slide.shapes.title
        heading = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
        blocks = [f"# {heading}"] if heading else []
        for shape in sorted(_shapes(slide.shapes), key=lambda s: (s.top or 0, s.left or 0)):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if shape.has_text_frame and shape.text_frame.text.strip():
                blocks.append(shape.text_frame.text.strip())
            elif shape.has_table:
                rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
                blocks.append(markdown_table(rows))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                blocks.append(f"Speaker notes: {notes}")
        pages.append(Page(number, clean_text("\n\n".join(blocks)), heading))
    title = (deck.core_properties.title or "").strip() or next((p.section for p in pages if p.section), "")
    return Loaded("pptx", title or stem_title(name), tuple(pages))


def _shapes(shapes):
    """Every shape, the members of groups included."""
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if isinstance(shape, GroupShape):
            yield from _shapes(shape.shapes)
        else:
            yield shape
