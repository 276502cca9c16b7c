"""OCR with the real Tesseract: an image-only PDF, a mixed PDF, a PNG; the cache; Tesseract missing."""

from __future__ import annotations

import shutil

import pytest
from ingest_files import make_bomb_png, make_text_pdf

import ingest.ocr
from ingest.loaders import LoadOptions, load
from ingest.pipeline import IngestOptions, Ingestor
from rag.errors import IngestError

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")


@needs_tesseract
def test_image_only_pdf_is_ocrd_with_page_progress(scan_files):
    steps = []
    loaded = load(scan_files["scanned"].read_bytes(), "scanned.pdf", progress=lambda d, n: steps.append((d, n)))
    assert loaded.kind == "pdf" and [p.number for p in loaded.pages] == [1]
    assert "Rosa Quispe sheared forty alpacas in Puno" in " ".join(loaded.pages[0].text.split())
    assert steps == [(1, 1)]


@needs_tesseract
def test_mixed_pdf_keeps_its_text_page_and_ocrs_the_scan(scan_files, monkeypatch):
    read = []
    real = ingest.ocr.ocr_pages
    monkeypatch.setattr(ingest.loaders.pdf, "ocr_pages", lambda r, idx, *a: read.append(list(idx)) or real(r, idx, *a))
    loaded = load(scan_files["mixed"].read_bytes(), "mixed.pdf")
    assert read == [[1]]  # only the second page went to Tesseract
    assert loaded.pages[0].text == "Chapter one is typed text about llama trekking."
    assert "vicuna census" in loaded.pages[1].text


@needs_tesseract
def test_png_is_ocrd(scan_files):
    loaded = load(scan_files["png"].read_bytes(), "note.png")
    assert loaded.kind == "image" and "forty alpacas" in loaded.pages[0].text


@needs_tesseract
def test_reingest_reads_ocr_from_the_cache(store, embedder, scan_files, monkeypatch):
    report = Ingestor(store, embedder, IngestOptions(workers=0)).ingest([scan_files["scanned"]])
    assert report.ok, report
    store.delete(report.files[0].doc_id)  # the same pages must be read again
    monkeypatch.setattr(ingest.ocr, "read_page", lambda *a: pytest.fail("OCR'd a cached page"))
    again = Ingestor(store, embedder, IngestOptions(workers=0)).ingest([scan_files["scanned"]])
    assert again.files[0].status == "added" and again.files[0].chunks == report.files[0].chunks


@needs_tesseract
def test_ocr_progress_reaches_the_caller_from_a_worker_process(store, embedder, scan_files):
    stages = []
    report = Ingestor(store, embedder, IngestOptions(workers=1, ocr_cache=False)).ingest(
        [scan_files["scanned"], scan_files["png"]], progress=lambda s, stage, f: stages.append((s, stage))
    )
    assert report.ok, report
    assert (str(scan_files["scanned"].resolve()), "ocr") in stages


def test_missing_tesseract_fails_the_file_with_an_install_line(store, embedder, scan_files, good_files, monkeypatch):
    monkeypatch.setattr(ingest.ocr, "TESSERACT", "/nonexistent/tesseract")
    ingest.ocr.tesseract_info.cache_clear()
    try:
        report = Ingestor(store, embedder, IngestOptions(workers=0)).ingest([scan_files["scanned"], good_files["text"]])
    finally:
        ingest.ocr.tesseract_info.cache_clear()
    assert [f.status for f in report.files] == ["failed", "added"]
    assert report.files[0].reason == (
        "this file needs OCR but Tesseract is not installed: run 'apt-get install tesseract-ocr' as root (or 'make install')"
    )


@needs_tesseract
def test_missing_language_names_its_package(scan_files):
    with pytest.raises(IngestError, match="tesseract-ocr-xyz.*ocr_languages|ocr_languages.*tesseract-ocr-xyz"):
        load(scan_files["png"].read_bytes(), "note.png", LoadOptions(ocr_languages="eng+xyz"))


def test_zero_byte_and_bomb_images_are_refused():
    with pytest.raises(IngestError, match="empty file"):
        load(b"", "scan.png")
    with pytest.raises(IngestError, match=r"image \(900 Mpx\) is over the 100 Mpx limit \(decompression-bomb guard\)"):
        load(make_bomb_png(), "bomb.png")
    with pytest.raises(IngestError, match="corrupt or"):
        load(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "cut.png")


def test_a_page_of_short_text_is_not_ocrd(monkeypatch):
    # Like liboctave.pdf's last page ("49 15 Bugs"): little text, no image; OCR would only cost time.
    monkeypatch.setattr(ingest.loaders.pdf, "ocr_pages", lambda *a: pytest.fail("OCR'd a text page"))
    assert load(make_text_pdf(["49", "15 Bugs"]), "short.pdf").pages[0].text == "49\n15 Bugs"
