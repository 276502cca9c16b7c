"""HTML: the main text (trafilatura), tables kept as Markdown tables."""

from __future__ import annotations

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress, clean_text, stem_title
from ingest.loaders.text import decode_text


@LOADERS.register("html")
def load_html(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    import trafilatura

    html = decode_text(data)
    text = trafilatura.extract(
        html, output_format="markdown", include_comments=False, include_tables=True, favor_recall=True
    )
    if not text:
        # Very short pages fall below trafilatura's thresholds; take the body text.
        from lxml import html as lxml_html

        tree = lxml_html.fromstring(html)
        for bad in tree.xpath("//script|//style|//nav|//header|//footer"):
            bad.drop_tree()
        text = tree.text_content()
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta and meta.title else "") or stem_title(name)
    return Loaded("html", title, (Page(None, clean_text(text)),))
