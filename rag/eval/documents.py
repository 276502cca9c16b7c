"""Document-style evaluation datasets: questions over real files (PDF manuals, ...).

A dataset folder holds ``questions.json``: a list of objects with ``question``,
``file`` (a file name inside the ``--documents`` folder), ``pages`` (gold pages,
physical and 1-based), ``answer`` and optionally ``id``, ``kind`` and
``answer_aliases``. The files are ingested through the normal pipeline (the
configured segmenter and chunk size) into a throwaway knowledge base cached
under ``<data_dir>/eval/docs-<hash>/``; the hash covers the files' content, the
embedder and the ingest settings, so a second run opens it instantly.

Answers are matched after :func:`normalize_text` (lower-case, whitespace runs
collapsed; punctuation kept: answers such as ``%{`` or ``input (prompt, "s")``
are made of it).

Metrics (see ``../shared/eval/manuals/README.md``): ``page_hit@k`` (a top-k chunk
comes from a gold page of the question's file; a chunk spanning pages counts if
any is gold) and ``answer_in_passages@k`` (the answer is in a top-k chunk).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from rag.config import Settings
from rag.errors import ConfigError
from rag.eval.dataset import first_questions, with_aliases
from rag.models import embed_model_id
from rag.types import Hit

log = logging.getLogger(__name__)

KB_NAME = "eval"
_READY = "ready.json"


def normalize_text(text: str) -> str:
    """Lower-case and collapse every run of whitespace to one space (punctuation is kept)."""
    return " ".join(text.lower().split())


def text_has_answer(text: str, answers: Iterable[str]) -> bool:
    """Whether a non-empty normalised answer is a substring of normalised ``text``."""
    hay = normalize_text(text)
    return any(a and a in hay for a in (normalize_text(x) for x in answers))


@dataclass(frozen=True)
class DocQuestion:
    """A question about one file: its gold pages and answer (with aliases)."""

    id: str
    question: str
    file: str
    pages: tuple[int, ...]
    answer: str
    aliases: tuple[str, ...] = ()
    kind: str = ""

    @property
    def answers(self) -> tuple[str, ...]:
        return with_aliases(self.answer, self.aliases)


@dataclass(frozen=True)
class DocDataset:
    """Questions over the files of ``documents``; ``digest`` identifies the files' content."""

    name: str
    documents: Path
    files: tuple[Path, ...]
    questions: tuple[DocQuestion, ...]
    digest: str

    def limit(self, n: int | None) -> "DocDataset":
        """The same files with only the first ``n`` questions (all when ``n`` is None)."""
        return first_questions(self, n)


def is_document_dataset(path: str | Path) -> bool:
    """A folder with ``questions.json`` and no ``corpus.json`` (its texts are files given separately)."""
    root = Path(path)
    return (root / "questions.json").is_file() and not (root / "corpus.json").exists()


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_document_dataset(path: str | Path, documents: str | Path | None, limit: int | None = None) -> DocDataset:
    """Read a document-style dataset folder; ``documents`` is the folder holding its files."""
    root = Path(path)
    qfile = root / "questions.json"
    if not qfile.is_file():
        raise ConfigError(f"dataset folder {root} has no questions.json")
    if documents is None:
        raise ConfigError(
            f"{root} is a document-style dataset (questions.json without corpus.json): "
            "give the folder holding its files with --documents DIR"
        )
    docs = Path(documents)
    if not docs.is_dir():
        raise ConfigError(f"--documents {docs} is not a folder; it must hold the files the questions name")
    try:
        raw = json.loads(qfile.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {qfile}: {exc}") from exc
    if not isinstance(raw, list):
        raise ConfigError(f"{qfile} must hold a JSON list of questions")
    questions = []
    for i, item in enumerate(raw):
        try:
            pages = item.get("pages") or []
            questions.append(
                DocQuestion(
                    id=str(item.get("id", f"q{i + 1}")),
                    question=str(item["question"]),
                    file=str(item["file"]),
                    pages=tuple(int(p) for p in (pages if isinstance(pages, list) else [pages])),
                    answer=str(item["answer"]),
                    aliases=tuple(str(a) for a in item.get("answer_aliases", []) or []),
                    kind=str(item.get("kind", "")),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"{qfile} item {i} needs 'question', 'file', 'answer' and 'pages' (a list of page numbers): {exc!r}"
            ) from exc
    names = sorted({q.file for q in questions})
    missing = [n for n in names if not (docs / n).is_file()]
    if missing:
        raise ConfigError(f"--documents {docs} lacks {', '.join(missing)} (named by {qfile.name})")
    files = tuple(docs / n for n in names)
    digest = hashlib.sha256("|".join(f"{f.name}:{_file_digest(f)}" for f in files).encode()).hexdigest()
    return DocDataset(root.name, docs, files, tuple(questions), digest).limit(limit)


def doc_kb_settings(dataset: DocDataset, settings: Settings) -> Settings:
    """Settings pointing at the dataset's cached knowledge base under ``<data_dir>/eval/docs-<hash>``."""
    local = embed_model_id(int8=settings.embed_backend == "onnx-int8")
    model = settings.embed_model if settings.embedder != "local" else local
    key_text = (
        f"{dataset.digest}|{settings.embedder}|{model}|{settings.segmenter}|"
        f"{settings.chunk_tokens}|{settings.chunk_overlap}"
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    return settings.replace(data_dir=str(Path(settings.data_dir) / "eval" / f"docs-{key}"), kb=KB_NAME, chroma_url="")


def document_kb(dataset: DocDataset, settings: Settings, embedder=None, engine=None):
    """Open (ingesting the files on first use) the throwaway knowledge base of ``dataset``.

    Returns a :class:`rag.pipeline.RAG` with ``settings``' query options. An
    interrupted build resumes: finished files are unchanged on re-ingest.
    """
    from rag.pipeline import RAG

    s = doc_kb_settings(dataset, settings)
    rag = RAG(s, embedder=embedder, engine=engine)
    ready = Path(s.data_dir) / _READY
    if ready.exists():
        return rag
    try:
        t0 = time.perf_counter()
        log.info("building document eval knowledge base from %d files", len(dataset.files))
        report = rag.ingest([str(f) for f in dataset.files])
        failed = [f for f in report.files if f.status == "failed"]
        if failed:
            raise ConfigError(f"{failed[0].source} failed to ingest: {failed[0].reason}")
        stats = {
            "documents": len(report.files),
            "pages": sum(f.pages for f in report.files),
            "chunks": sum(f.chunks for f in report.files),
            "segmenter": s.segmenter,
            "chunk_tokens": s.chunk_tokens,
            "chunk_overlap": s.chunk_overlap,
            "build_s": round(time.perf_counter() - t0, 1),
        }
    except BaseException:
        rag.close()
        raise
    ready.write_text(json.dumps({"built": time.time(), **stats}), encoding="utf-8")
    return rag


def doc_kb_stats(rag) -> dict[str, Any]:
    """What building the open document knowledge base took (documents, pages, chunks, seconds)."""
    try:
        return json.loads((Path(rag.settings.data_dir) / _READY).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def hit_pages(hit: Hit) -> range:
    """The 1-based pages a hit's chunk spans (empty when it has none)."""
    c = hit.chunk
    if c.page is None:
        return range(0)
    return range(c.page, (c.page_end if c.page_end is not None else c.page) + 1)


def is_gold_hit(hit: Hit, question: DocQuestion) -> bool:
    """Whether ``hit`` comes from the question's file and spans one of its gold pages."""
    return Path(hit.chunk.source).name == question.file and any(p in question.pages for p in hit_pages(hit))


def page_hit(hits: Sequence[Hit], question: DocQuestion, k: int = 5) -> bool:
    """At least one of the top-``k`` hits comes from a gold page."""
    return any(is_gold_hit(h, question) for h in hits[:k])


def answer_in_passages(hits: Sequence[Hit], answers: Iterable[str], k: int = 5) -> bool:
    """The normalised answer is a substring of at least one top-``k`` chunk's text."""
    answers = tuple(answers)
    return any(text_has_answer(h.chunk.text, answers) for h in hits[:k])
