"""The sample knowledge base: hoprag's own documentation, built on first start."""

from __future__ import annotations

import logging
from pathlib import Path

from rag.types import IngestReport

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def sample_paths(root: Path = ROOT) -> list[Path]:
    """README, docs/*.md and the PDF edition in data/sample/."""
    paths = [root / "README.md"]
    paths += sorted((root / "docs").glob("*.md"))
    paths += sorted((root / "data" / "sample").glob("*.pdf"))
    return [p for p in paths if p.exists()]


def ensure_sample(rag, root: Path = ROOT) -> IngestReport | None:
    """Ingest the sample documents if the knowledge base has no documents yet."""
    if rag.documents():
        return None
    report = rag.ingest(sample_paths(root))
    log.info("built the sample knowledge base: %d files", len(report.files))
    return report
