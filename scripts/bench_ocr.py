#!/usr/bin/env python
"""OCR speed and retrieval on a scanned copy of a real manual (issue 18's OCR target).

    .venv/bin/python scripts/bench_ocr.py MANUAL.pdf [--first 100] [--pages 20] [--dpi 150,200,300] [--json]

Takes ``--pages`` pages of MANUAL.pdf from page index ``--first``; writes them as a
text-layer PDF (the original) and as an image-only PDF (each page rendered with
PDFium at ``--scan-dpi``, saved as a PDF of page images, like a scanner's output).
Ingests the original once, then the scan once per OCR resolution in ``--dpi``, each
into a fresh data dir (cold embedding and OCR caches), and prints the scan's ingest
pages/s and page-hit@5: for three sentences of each page (taken from the text
layer), whether one of the top 5 passages is on that page. "idle p/s" is the
run's CPU time (this process, its parser process and the tesseract processes)
spread over the cores: the rate on a machine nobody else is using. Reference manual:
``apt-get download octave-doc && dpkg -x octave-doc_*.deb x`` gives
x/usr/share/doc/octave/octave.pdf.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import json
import re
import sys
import tempfile
import time
from pathlib import Path


def subset(src: Path, first: int, count: int, out_dir: Path, scan_dpi: int) -> tuple[Path, Path, list[str]]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(src))
    indexes = list(range(first, min(first + count, len(doc))))
    texts = []
    for i in indexes:
        page = doc[i]
        textpage = page.get_textpage()
        texts.append(textpage.get_text_bounded())
        textpage.close()
        page.close()
    original = pdfium.PdfDocument.new()
    original.import_pages(doc, indexes)
    text_pdf = out_dir / "original.pdf"
    original.save(str(text_pdf))
    original.close()
    images = [doc[i].render(scale=scan_dpi / 72, grayscale=True).to_pil() for i in indexes]
    scan_pdf = out_dir / "scanned.pdf"
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=scan_dpi, save_all=True, append_images=images[1:])
    scan_pdf.write_bytes(buf.getvalue())
    doc.close()
    return text_pdf, scan_pdf, texts


def questions(texts: list[str], per_page: int = 3) -> list[tuple[str, int]]:
    """(sentence, 1-based page) — the longest prose sentences of each page, cut to 20 words."""
    out = []
    for number, text in enumerate(texts, 1):
        flat = " ".join(text.split())
        sentences = [s for s in re.split(r"(?<=[.?!])\s+", flat) if len(s.split()) >= 8 and not re.search(r"[{}=;]", s)]
        for sentence in sorted(sentences, key=len, reverse=True)[:per_page]:
            out.append((" ".join(sentence.split()[:20]), number))
    return out


def run(pdf: Path, qs: list[tuple[str, int]], dpi: int | None) -> dict:
    import ingest.ocr
    from rag import RAG, Settings

    if dpi:
        ingest.ocr.OCR_DPI = dpi
    with tempfile.TemporaryDirectory(prefix="hoprag-bench-ocr-") as data_dir:
        with RAG(Settings(data_dir=data_dir, kb="bench")) as rag:
            rag.embedder.embed(["warm up"])  # model load outside the timed part
            cpu0 = _cpu()
            t0 = time.perf_counter()
            report = rag.ingest([pdf])
            seconds = time.perf_counter() - t0
            cpu = _cpu() - cpu0
            if not report.ok:
                raise SystemExit(f"ingest failed: {report.files[0].reason}")
            hits = sum(any(h.chunk.page == page for h in rag.retrieve(q, k=5)) for q, page in qs)
    pages = report.files[0].pages
    cores = len(os.sched_getaffinity(0))
    return {"ocr_dpi": dpi, "pages": pages, "chunks": report.files[0].chunks, "seconds": round(seconds, 2),
            "pages_per_s": round(pages / seconds, 3), "cpu_s": round(cpu, 1),
            # what the run would take with the cores to itself: its CPU time spread over them
            "idle_pages_per_s": round(pages / max(cpu / cores, 1e-9), 3), "page_hit_at_5": round(hits / len(qs), 3)}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (parser processes, tesseract)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pdf", type=Path)
    ap.add_argument("--first", type=int, default=100, help="first page index (0-based) of the subset")
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--scan-dpi", type=int, default=300, help="resolution of the simulated scan")
    ap.add_argument("--dpi", default="200", help="OCR render resolutions to try, comma-separated")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hoprag-bench-ocr-pdf-") as tmp:
        text_pdf, scan_pdf, texts = subset(args.pdf, args.first, args.pages, Path(tmp), args.scan_dpi)
        qs = questions(texts)
        rows = [{"variant": "text layer (original)", **run(text_pdf, qs, None)}]
        for dpi in [int(d) for d in args.dpi.split(",")]:
            rows.append({"variant": f"image-only, OCR at {dpi} dpi", **run(scan_pdf, qs, dpi)})
    base = rows[0]["page_hit_at_5"]
    for row in rows:
        row["hit_delta"] = round(row["page_hit_at_5"] - base, 3)
    if args.json:
        print(json.dumps({"pdf": str(args.pdf), "first": args.first, "questions": len(qs), "rows": rows}))
        return 0
    print(f"{args.pdf.name}: pages {args.first + 1}-{args.first + len(texts)}, {len(qs)} questions, "
          f"scan rendered at {args.scan_dpi} dpi")
    print(f"{'variant':32} {'pages':>5} {'chunks':>6} {'seconds':>8} {'pages/s':>8} {'CPU s':>7} "
          f"{'idle p/s':>8} {'hit@5':>6} {'delta':>6}")
    for r in rows:
        print(f"{r['variant']:32} {r['pages']:5} {r['chunks']:6} {r['seconds']:8.1f} {r['pages_per_s']:8.2f} "
              f"{r['cpu_s']:7.1f} {r['idle_pages_per_s']:8.2f} {r['page_hit_at_5']:6.3f} {r['hit_delta']:+6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
