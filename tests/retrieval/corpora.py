"""Tiny hand-made knowledge bases for the retrieval strategy tests (one chunk per document)."""

from __future__ import annotations

import time

from rag.types import Chunk, Document

# The bridge passage (Mirela Vantongeren) never names the label or the question's words;
# it is reachable only through the label's passage, which names her.
BRIDGE = {
    "zorblax": (
        "Zorblax Records",
        "Zorblax Records is an independent record label founded in 1987 by Mirela Vantongeren.",
    ),
    "mirela": ("Biography", "Mirela Vantongeren grew up in Brno and played the bassoon in an orchestra."),
    "catalogue": (
        "Zorblax Records catalogue",
        "Zorblax Records has released more than two hundred albums of folk and jazz.",
    ),
    "workshop": ("Instrument workshop", "The founder of the instrument workshop played the violin and the piano."),
    "labels": ("Record labels", "Founders of independent record labels often play an instrument themselves."),
    "otter": ("Sea otter", "Sea otters use stones to crack open shellfish."),
}
BRIDGE_QUESTION = "Which instrument did the founder of Zorblax Records play?"

# Nothing shares a rare name: no hop can link anything.
UNLINKED = {
    "a": ("apples", "apples grow on trees in orchards."),
    "b": ("pears", "pears ripen after they are picked."),
    "c": ("plums", "plums are dried to make prunes."),
}


def fill(rag, passages: dict[str, tuple[str, str]], source_of=lambda k: f"{k}.txt", page_of=lambda k: None) -> None:
    """Store each passage as one document and chunk whose id is its key."""
    chunks = [
        Chunk(id=key, doc_id=key, text=text, source=source_of(key), title=title, page=page_of(key))
        for key, (title, text) in passages.items()
    ]
    vectors = rag.embedder.embed([c.embed_text for c in chunks])
    for chunk, vec in zip(chunks, vectors):
        doc = Document(chunk.doc_id, chunk.source, chunk.title, 1, 1, time.time())
        rag.store.add_document(doc, [chunk], vec[None, :])


def build_kb(tmp_path_factory, embedder, passages, **page_and_source):
    """Fill a fresh data dir once (per test module) and return its settings."""
    from rag import RAG, Settings

    settings = Settings(data_dir=str(tmp_path_factory.mktemp("kb")))
    with RAG(settings, embedder=embedder) as rag:
        fill(rag, passages, **page_and_source)
    return settings


def open_rag(settings, embedder, engine=None, **changes):
    from rag import RAG

    return RAG(settings.replace(**changes) if changes else settings, embedder=embedder, engine=engine)

# Two passages name the label's founder (so both are linked from the label's passage), but only
# "bassoon" answers what the label's passage leaves open (which instrument she played);
# "orchestra" mentions her only in lower case (no name links it), yet has the open question's words.
RESIDUAL = {
    "zorblax": BRIDGE["zorblax"],
    "labels": ("Record labels", "Founders of independent record labels often sign bands from their own town."),
    "otter": BRIDGE["otter"],
    "shells": ("Shellfish", "Shellfish such as mussels live on rocks along the coast."),
    "bassoon": (
        "Biography",
        "Mirela Vantongeren grew up in Brno. Neighbours remember her playing the bassoon, her only instrument, "
        "on the balcony every evening.",
    ),
    "festival": (
        "Brno festival",
        "Mirela Vantongeren ran an independent music label and founded a festival for record collectors in Brno.",
    ),
    "orchestra": (
        "Orchestra notes",
        "In the town orchestra the vantongeren bassoon was the instrument every child wanted to play.",
    ),
}
