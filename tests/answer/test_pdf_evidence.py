"""PDF evidence: the file is kept beside the index, and each evidence sentence gets its page and line boxes."""

from __future__ import annotations

from pathlib import Path

from rag import RAG, Settings

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "hoprag-guide.pdf"


def test_pdf_original_kept_and_evidence_located(tmp_path, embedder):
    settings = Settings(data_dir=str(tmp_path / "data"))
    with RAG(settings, embedder=embedder) as rag:
        report = rag.ingest([("guide.pdf", SAMPLE.read_bytes())])
        assert report.ok, report.to_dict()
        doc_id = report.files[0].doc_id
        kept = rag.original(doc_id)
        assert kept is not None and kept.read_bytes() == SAMPLE.read_bytes()

        answer = rag.ask("How is a document's id computed?", answer_mode="extractive")
        assert answer.citations and not answer.abstained
        located = [h for c in answer.citations for h in c.highlights if h.boxes]
        assert located, [c.to_dict() for c in answer.citations]
        for c in answer.citations:
            for h in c.highlights:
                if h.boxes:
                    assert h.page is not None and c.page <= h.page
                    for left, top, right, bottom in h.boxes:
                        assert 0 <= left < right and 0 <= top < bottom  # points, top-left origin
        assert answer.to_dict()["citations"][0]["highlights"][0]["page"] is not None

        rag.delete(doc_id)
        assert rag.original(doc_id) is None and not kept.exists()
