"""The sample knowledge base: hoprag's own documentation, built on first start.

The documents are the README, ``docs/*.md`` and the PDF edition: package data
under ``rag/sample_docs/`` in an installed wheel (see pyproject's
force-include), the checkout's own files in a source tree.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag.types import IngestReport

log = logging.getLogger(__name__)

PACKAGED = Path(__file__).resolve().parent / "sample_docs"  # README.md, docs/, sample/ (wheel)
CHECKOUT = Path(__file__).resolve().parent.parent  # README.md, docs/, data/sample/ (source tree)


def sample_root() -> Path:
    """Where the sample documents are: the installed package's copy, else the checkout."""
    return PACKAGED if (PACKAGED / "README.md").is_file() else CHECKOUT


def sample_paths(root: Path | None = None) -> list[Path]:
    """README, docs/*.md and the PDF edition (``sample/`` in the package, ``data/sample/`` in the checkout)."""
    root = root or sample_root()
    paths = [root / "README.md"]
    paths += sorted((root / "docs").glob("*.md"))
    for pdfs in (root / "sample", root / "data" / "sample"):
        paths += sorted(pdfs.glob("*.pdf"))
    return [p for p in paths if p.exists()]


def ensure_sample(rag, root: Path | None = None) -> IngestReport | None:
    """Ingest the sample documents if the knowledge base has no documents yet."""
    if rag.documents():
        return None
    paths = sample_paths(root)
    if not paths:
        log.warning("no sample documents found under %s: the sample knowledge base stays empty", root or sample_root())
        return None
    report = rag.ingest(paths)
    log.info("built the sample knowledge base: %d files", len(report.files))
    return report
