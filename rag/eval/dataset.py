"""MuSiQue-style evaluation datasets and the throwaway knowledge base built from them.

A dataset directory holds ``corpus.json`` (a list of ``{"title", "text"}``) and
``questions.json`` (MuSiQue objects: ``id``, ``question``, ``answer``,
``answer_aliases``, ``paragraphs`` with ``is_supporting``). A passage is the
pair (title, text); gold passages are matched to the corpus by that pair.

The knowledge base (one document and one chunk per passage) is cached under
``<data_dir>/eval/<hash>/`` where the hash covers the corpus content and the
embedder, so a second run opens it instantly. With ``pack`` > 1 the passages are
packed into Markdown documents ingested through the normal pipeline with the
configured segmenter (see :mod:`rag.eval.packing`); the hash then also covers
the pack size, segmenter, chunk size and overlap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from rag.config import Settings
from rag.models import embed_model_id
from rag.errors import ConfigError
from rag.types import Chunk, Document, Hit

log = logging.getLogger(__name__)

KB_NAME = "eval"
_READY = "ready.json"


@dataclass(frozen=True)
class Passage:
    """One corpus passage; ``id`` is also its chunk id and document id in the eval KB."""

    id: str
    title: str
    text: str


def _steps(decomposition: list[dict]) -> tuple[str, ...]:
    answers = [str(d.get("answer", "")) for d in decomposition]

    def answer_of(m: re.Match) -> str:
        n = int(m.group(1))
        return answers[n - 1] if 0 < n <= len(answers) else m.group(0)

    steps = []
    for d in decomposition:
        text = re.sub(r"#(\d+)", answer_of, str(d["question"])).strip()
        # Some hops are written as "subject >> relation"; a user would ask it as a question.
        subject, sep, relation = text.partition(" >> ")
        steps.append(f"What is the {relation.strip()} of {subject.strip()}?" if sep else text)
    return tuple(steps)


def with_aliases(answer: str, aliases: tuple[str, ...]) -> tuple[str, ...]:
    """The answer, then its aliases that differ from it."""
    return (answer, *[a for a in aliases if a != answer])


def first_questions(dataset, n: int | None):
    """``dataset`` with only its first ``n`` questions (all when ``n`` is None)."""
    if n is None:
        return dataset
    if n < 1:
        raise ConfigError(f"--limit {n} must be at least 1")
    return dataclasses.replace(dataset, questions=dataset.questions[:n])


@dataclass(frozen=True)
class Question:
    """A question with its answers and the ids of its gold (supporting) passages."""

    id: str
    question: str
    answer: str
    aliases: tuple[str, ...] = ()
    gold: tuple[str, ...] = ()
    # The hops as a user would ask them one by one: MuSiQue's sub-questions with
    # "#n" replaced by the answer of hop n (empty when the item has none).
    steps: tuple[str, ...] = ()

    @property
    def answers(self) -> tuple[str, ...]:
        """The answer and its aliases (what EM/F1 take the best of)."""
        return with_aliases(self.answer, self.aliases)


@dataclass(frozen=True)
class Dataset:
    """Passages and questions of one evaluation set; ``digest`` identifies the corpus."""

    name: str
    passages: tuple[Passage, ...]
    questions: tuple[Question, ...]
    digest: str

    def passage(self, pid: str) -> Passage:
        return self._by_id()[pid]

    def _by_id(self) -> dict[str, Passage]:
        cache = self.__dict__.get("_index")
        if cache is None:
            cache = {p.id: p for p in self.passages}
            object.__setattr__(self, "_index", cache)
        return cache

    def limit(self, n: int | None) -> "Dataset":
        """The same corpus with only the first ``n`` questions (all when ``n`` is None)."""
        return first_questions(self, n)

    def gold_hits(self, question: Question) -> list[Hit]:
        """The gold passages of ``question`` as hits (for oracle prompts), in corpus order."""
        chunks = [passage_chunk(self.passage(pid)) for pid in question.gold]
        return [Hit(chunk, score=1.0, rank=i, origin="gold") for i, chunk in enumerate(chunks)]


def passage_key(title: str, text: str) -> str:
    """A stable passage id from its (title, text)."""
    return "p" + hashlib.sha256(f"{title}\x00{text}".encode("utf-8")).hexdigest()[:16]


def passage_chunk(p: Passage) -> Chunk:
    """The chunk a passage becomes: its title is the chunk title (and what is embedded with it)."""
    # The source is shown in prompt headers as a file name, so a '/' in a title must not cut it.
    return Chunk(id=p.id, doc_id=p.id, text=p.text, source=p.title.replace("/", "\u2215") or p.id, title=p.title)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}; a dataset folder needs corpus.json and questions.json") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc


def load_dataset(path: str | Path, limit: int | None = None) -> Dataset:
    """Read a MuSiQue-style dataset folder (``corpus.json`` + ``questions.json``)."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"dataset folder {root} does not exist; it must contain corpus.json and questions.json")
    corpus_raw = _read_json(root / "corpus.json")
    questions_raw = _read_json(root / "questions.json")
    if not isinstance(corpus_raw, list) or not isinstance(questions_raw, list):
        raise ConfigError(f"{root}: corpus.json and questions.json must each hold a JSON list")
    passages: dict[str, Passage] = {}
    for i, item in enumerate(corpus_raw):
        try:
            title, text = str(item["title"]), str(item["text"])
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{root / 'corpus.json'} item {i} needs 'title' and 'text'") from exc
        pid = passage_key(title, text)
        passages.setdefault(pid, Passage(pid, title, text))
    questions: list[Question] = []
    for i, item in enumerate(questions_raw):
        try:
            gold = []
            for para in item.get("paragraphs", []):
                if para.get("is_supporting"):
                    pid = passage_key(str(para["title"]), str(para["paragraph_text"]))
                    if pid not in passages:
                        raise ConfigError(
                            f"question {item['id']!r}: gold passage {para['title']!r} is not in corpus.json "
                            "(passages are matched by title and text)"
                        )
                    if pid not in gold:
                        gold.append(pid)
            questions.append(
                Question(
                    id=str(item["id"]),
                    question=str(item["question"]),
                    answer=str(item.get("answer", "")),
                    aliases=tuple(str(a) for a in item.get("answer_aliases", []) or []),
                    gold=tuple(gold),
                    steps=_steps(item.get("question_decomposition") or []),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{root / 'questions.json'} item {i} is not a MuSiQue question: {exc!r}") from exc
    digest = hashlib.sha256(
        json.dumps([[p.title, p.text] for p in passages.values()], ensure_ascii=False).encode("utf-8")
    ).hexdigest()
    return Dataset(root.name, tuple(passages.values()), tuple(questions), digest).limit(limit)


def kb_settings(dataset: Dataset, settings: Settings, pack: int = 1) -> Settings:
    """Settings pointing at the dataset's cached knowledge base under ``<data_dir>/eval/<hash>``."""
    # The embedder's model id: torch and onnx float32 vectors are the same, int8 ones differ.
    local = embed_model_id(int8=settings.embed_backend == "onnx-int8")
    model = settings.embed_model if settings.embedder != "local" else local
    key_text = f"{dataset.digest}|{settings.embedder}|{model}"
    if pack > 1:  # only packed documents go through the segmenter
        key_text += f"|pack={pack}|{settings.segmenter}|{settings.chunk_tokens}|{settings.chunk_overlap}"
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    return settings.replace(data_dir=str(Path(settings.data_dir) / "eval" / key), kb=KB_NAME, chroma_url="")


def eval_kb(dataset: Dataset, settings: Settings, embedder=None, engine=None, pack: int = 1):
    """Open (building it on first use) the throwaway knowledge base of ``dataset``.

    Returns a :class:`rag.pipeline.RAG` whose retrieval/ask use ``settings``'
    query options (strategy, top_k, reranker, ...); pass ``embedder``/``engine``
    to share already-loaded models. With ``pack`` > 1, ``pack`` passages go into
    each document and the documents are ingested with ``settings``' segmenter;
    :func:`kb_stats` then says how many chunks that made.
    """
    from rag.pipeline import RAG

    if pack < 1:
        raise ConfigError(f"--pack {pack} must be at least 1 (passages per document)")
    s = kb_settings(dataset, settings, pack)
    rag = RAG(s, embedder=embedder, engine=engine)
    ready = Path(s.data_dir) / _READY
    if ready.exists() and (pack > 1 or rag.store.count() == len(dataset.passages)):
        return rag
    try:
        stats = _build(rag, dataset.passages) if pack == 1 else _build_packed(rag, dataset.passages, pack)
    except BaseException:
        rag.close()
        raise
    ready.write_text(json.dumps({"passages": len(dataset.passages), "built": time.time(), **stats}), encoding="utf-8")
    return rag


def kb_stats(rag) -> dict[str, Any]:
    """What building the open eval knowledge base took: documents, chunks, embedded tokens, seconds."""
    try:
        return json.loads((Path(rag.settings.data_dir) / _READY).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _build_packed(rag, passages: Sequence[Passage], pack: int) -> dict[str, Any]:
    from rag.eval.packing import pack_passages

    t0 = time.perf_counter()
    docs = pack_passages(passages, pack)
    log.info("building packed eval knowledge base: %d documents of %d passages", len(docs), pack)
    # Re-ingesting finished documents is a no-op, so an interrupted build resumes here.
    report = rag.ingest([(d.name, d.text.encode("utf-8")) for d in docs])
    failed = [f for f in report.files if f.status == "failed"]
    if failed:
        raise ConfigError(f"packed document {failed[0].source} failed to ingest: {failed[0].reason}")
    chunks = rag.store.chunks()
    return {
        "pack": pack,
        "documents": len(docs),
        "chunks": len(chunks),
        # What embedding cost: every chunk's situated text (title and section prepended).
        "embedded_tokens": sum(rag.embedder.count_tokens(c.embed_text) for c in chunks),
        "segmenter": rag.settings.segmenter,
        "chunk_tokens": rag.settings.chunk_tokens,
        "chunk_overlap": rag.settings.chunk_overlap,
        "build_s": round(time.perf_counter() - t0, 1),
    }


def _build(rag, passages: Sequence[Passage]) -> dict[str, Any]:
    store = rag.store
    have = set(store.committed_ids())
    todo = [p for p in passages if p.id not in have]
    log.info("building eval knowledge base: %d passages to embed", len(todo))
    chunks = [passage_chunk(p) for p in todo]
    vectors = rag.embedder.embed([c.embed_text for c in chunks])
    now = time.time()
    for chunk, vec in zip(chunks, vectors):
        store.add_document(Document(chunk.doc_id, chunk.source, chunk.title, 0, 1, now), [chunk], vec[None, :])
    tokens = sum(rag.embedder.count_tokens(passage_chunk(p).embed_text) for p in passages)
    return {"pack": 1, "documents": len(passages), "chunks": len(passages), "embedded_tokens": tokens}


def hit_ids(hits: Iterable[Hit]) -> list[str]:
    """Passage ids of ``hits`` in order, matched by (title, text) like the gold passages."""
    return [passage_key(h.chunk.title, h.chunk.text) for h in hits]


def gold_flags(hits: Iterable[Hit], question: Question) -> list[bool]:
    """For each hit, whether it is one of ``question``'s gold passages."""
    gold = set(question.gold)
    return [pid in gold for pid in hit_ids(hits)]


def without_gold(dataset: Dataset, n: int) -> tuple[Dataset, Dataset]:
    """(the corpus without the gold passages of the first ``n`` questions, those ``n`` questions).

    Asked against that corpus, the ``n`` questions have no answer in the
    documents: a system that abstains well says so for them.
    """
    if n < 1 or n > len(dataset.questions):
        raise ConfigError(f"--unanswerable {n} must be between 1 and the number of questions ({len(dataset.questions)})")
    removed = dataset.questions[:n]
    gone = {pid for q in removed for pid in q.gold}
    passages = tuple(p for p in dataset.passages if p.id not in gone)
    digest = hashlib.sha256(f"{dataset.digest}|without|{','.join(sorted(gone))}".encode()).hexdigest()
    return (
        Dataset(f"{dataset.name}-unanswerable", passages, dataset.questions, digest),
        Dataset(f"{dataset.name}-unanswerable", passages, removed, digest),
    )
