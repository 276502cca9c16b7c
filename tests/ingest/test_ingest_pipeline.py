"""The ingest pipeline end to end on the real embedder and a real (embedded) Chroma."""

from __future__ import annotations

import json

import pytest
from ingest_files import NO_TEXT
from typer.testing import CliRunner

from ingest.pipeline import IngestOptions, Ingestor
from rag import cli
from rag.store import Store


def consistent(store: Store) -> set[str]:
    """Chroma ids == BM25 ids == the chunks of committed documents; returns them."""
    docs = store.documents()
    expected = {f"{d.doc_id}:{i:05d}" for d in docs for i in range(d.chunks)}
    chroma = store.collection.get(include=[])["ids"]
    assert len(chroma) == len(set(chroma))
    bm25 = store.bm25_index().ids
    assert len(bm25) == len(set(bm25))
    assert set(chroma) == expected == set(bm25)
    assert not store.documents(include_pending=True)[len(docs):]
    return expected


def test_every_loader_end_to_end(store, embedder, good_files):
    report = Ingestor(store, embedder).ingest(list(good_files.values()))
    assert [f.status for f in report.files] == ["added"] * 5, report
    assert report.ok
    pdf = next(f for f in report.files if f.source.endswith("handbook.pdf"))
    assert pdf.pages == 3
    consistent(store)
    hit = store.bm25_search("Rosa Quispe loom", 1)[0]
    assert hit.chunk.source.endswith("handbook.pdf") and hit.chunk.page == 3
    assert hit.chunk.section == "Chapter 3" and hit.chunk.title == "Alpaca Handbook"
    dense = store.query(embedder.embed(["Who built the loom in Cusco?"])[0], 1)
    assert dense[0].chunk.page == 3
    assert store.bm25_search("cochineal", 5, where={"source": str(good_files["docx"].resolve())})


def test_reingest_unchanged_is_a_noop(store, embedder, good_files, monkeypatch):
    ingestor = Ingestor(store, embedder)
    ingestor.ingest([good_files["markdown"], good_files["text"]])
    before = consistent(store)
    generation = store.generation()
    monkeypatch.setattr(embedder, "embed", lambda *a, **k: pytest.fail("embedded an unchanged file"))
    report = ingestor.ingest([good_files["markdown"], good_files["text"]])
    assert [f.status for f in report.files] == ["unchanged", "unchanged"]
    assert report.files[0].chunks > 0
    assert consistent(store) == before and store.generation() == generation


def test_changed_file_replaces_atomically_and_reembeds_only_changed_chunks(store, embedder, tmp_path, monkeypatch):
    path = tmp_path / "notes.md"
    parts = [f"## Part {i}\n\nThe part {i} paragraph talks about topic{i} and nothing else." for i in range(6)]
    path.write_text("# Notes\n\n" + "\n\n".join(parts) + "\n\nThe version marker is OLDVERSION.\n")
    ingestor = Ingestor(store, embedder, IngestOptions(chunk_tokens=40, chunk_overlap=0))
    first = ingestor.ingest([path]).files[0]
    assert first.status == "added"
    old_id = first.doc_id

    path.write_text("# Notes\n\n" + "\n\n".join(parts) + "\n\nThe version marker is NEWVERSION.\n")
    embedded: list[str] = []
    real_embed = embedder.embed

    def counting_embed(texts, progress=None):
        embedded.extend(texts)
        return real_embed(texts, progress=progress)

    monkeypatch.setattr(embedder, "embed", counting_embed)
    seen_during_write: list[set[str]] = []
    real_upsert = store.vectors.upsert

    def upsert_then_query(chunks, vectors):
        real_upsert(chunks, vectors)
        # New chunks are in Chroma but not committed: queries must still see only the old version.
        for hits in (store.bm25_search("version marker", 10), store.query(vectors[0], 20)):
            seen_during_write.append({h.chunk.doc_id for h in hits})
        assert not store.bm25_search("NEWVERSION", 5)

    monkeypatch.setattr(store.vectors, "upsert", upsert_then_query)
    second = ingestor.ingest([path]).files[0]
    assert second.status == "replaced" and second.doc_id != old_id
    assert seen_during_write and all(s == {old_id} for s in seen_during_write)
    # Only the changed chunk went through the model; the rest came from the cache.
    assert len(embedded) == 1 and "NEWVERSION" in embedded[0]
    assert [d.doc_id for d in store.documents()] == [second.doc_id]
    assert {h.chunk.doc_id for h in store.bm25_search("version marker", 10)} == {second.doc_id}
    assert store.bm25_search("OLDVERSION", 5) == []
    consistent(store)


def test_bad_inputs_never_stop_a_batch(store, embedder, good_files, bad_files):
    inputs = [good_files["text"], *bad_files.values(), good_files["markdown"]]
    report = Ingestor(store, embedder, IngestOptions(max_file_mb=1)).ingest(inputs)
    by_name = {f.source.rsplit("/", 1)[-1]: f for f in report.files}
    assert by_name["vicuna.txt"].status == by_name["llamas.md"].status == "added"
    expected = {
        "locked.pdf": "encrypted PDF",
        "truncated.pdf": "truncated PDF",
        "empty.txt": "empty file",
        "garbage.pdf": "binary content",
        "garbage.txt": "binary content",
        "scan.pdf": NO_TEXT,
        "huge.txt": "over the 1 MB limit",
    }
    for name, reason in expected.items():
        assert by_name[name].status == "failed" and reason in by_name[name].reason, by_name[name]
        assert "\n" not in by_name[name].reason
    assert report.partial and not report.ok
    consistent(store)


def test_parser_worker_process(store, embedder, good_files):
    report = Ingestor(store, embedder, IngestOptions(workers=1)).ingest(
        [good_files["pdf"], ("bad.pdf", b"%PDF-1.4 nonsense"), good_files["docx"]]
    )
    assert [f.status for f in report.files] == ["added", "failed", "added"]
    assert "PDF" in report.files[1].reason
    consistent(store)


def test_delete_removes_everywhere(store, embedder, good_files):
    Ingestor(store, embedder).ingest([good_files["markdown"], good_files["text"]])
    doc = store.resolve("llamas.md")
    store.delete(doc.doc_id)
    assert [d.source for d in store.documents()] == [str(good_files["text"].resolve())]
    assert store.bm25_search("llamas selenium", 5) == []
    assert not store.collection.get(where={"doc_id": doc.doc_id})["ids"]
    assert store.status(doc.doc_id) is None
    consistent(store)


def test_cli_ingest_partial_docs_and_delete(cli_rag, good_files, bad_files):
    runner = CliRunner()
    args = ["--data-dir", cli_rag.data_dir, "--kb", "cli"]
    result = runner.invoke(cli.app, ["ingest", str(good_files["text"]), str(bad_files["encrypted"]), *args])
    assert result.exit_code == cli.EXIT_PARTIAL, result.output
    assert "encrypted PDF" in result.output and "added" in result.output
    again = runner.invoke(cli.app, ["ingest", str(good_files["text"]), *args])
    assert again.exit_code == 0 and "unchanged" in again.output

    listed = json.loads(runner.invoke(cli.app, ["docs", "--json", *args]).output)
    assert [d["source"].rsplit("/", 1)[-1] for d in listed] == ["vicuna.txt"]
    gone = runner.invoke(cli.app, ["delete", "vicuna.txt", *args])
    assert gone.exit_code == 0, gone.output
    assert json.loads(runner.invoke(cli.app, ["docs", "--json", *args]).output) == []
    store = Store(cli_rag.index_dir, "cli")
    try:
        assert store.count() == 0 and store.bm25_index().ids == []
    finally:
        store.close()
    missing = runner.invoke(cli.app, ["delete", "nope.txt", *args])
    assert missing.exit_code == cli.EXIT_ERROR and "hoprag docs" in missing.output


def test_worker_token_counter_matches_the_embedder(embedder):
    from ingest.parse import token_counter

    text = "ComplexMatrix operator * (const ComplexMatrix &a, const DiagMatrix &b) " * 30
    assert token_counter(embedder)(text) == embedder.count_tokens(text) > 300


def test_a_crashing_parser_fails_only_its_file(store, embedder, good_files, monkeypatch):
    import os

    import ingest.parse

    real_load = ingest.parse.load

    def load_or_die(data, name, *rest):
        if name.endswith("poison.txt"):
            os._exit(1)  # like a native parser segfaulting on a hostile file
        return real_load(data, name, *rest)

    # Forked workers inherit the patched module.
    monkeypatch.setattr(ingest.parse, "load", load_or_die)
    inputs = [good_files["markdown"], ("poison.txt", b"anything"), good_files["text"]]
    report = Ingestor(store, embedder, IngestOptions(workers=1)).ingest(inputs)
    assert [f.status for f in report.files] == ["added", "failed", "added"]
    assert "crashed" in report.files[1].reason
    consistent(store)
