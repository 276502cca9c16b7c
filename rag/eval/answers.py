"""Answer evaluation: EM/F1, citations, answer-in-context and latency per configuration, plus an oracle."""

from __future__ import annotations

import logging
import re
import time
from typing import Callable, Sequence

from rag.answer.generative import key_sentences
from rag.engines.base import generate
from rag.eval.dataset import Dataset, Question, hit_ids
from rag.eval.documents import DocQuestion, answer_in_passages, is_gold_hit, page_hit, text_has_answer
from rag.eval.metrics import answer_in, exact_match, mean, percentile, token_f1
from rag.evidence.base import Evidence
from rag.generate import answer_request, cite
from rag.types import Hit

log = logging.getLogger(__name__)

_MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


def strip_citations(text: str) -> str:
    """The answer without its [n] markers (they are not part of the answer)."""
    return " ".join(_MARKERS.sub(" ", text).split())


def _row(records: list[dict]) -> dict[str, float]:
    def col(name: str) -> list[float]:
        return [r[name] for r in records if r.get(name) is not None]

    row = {
        "em": mean(col("em")),
        "f1": mean(col("f1")),
        # Precision is over answers that cite something; an answer citing nothing has no precision.
        "citation_precision": mean(col("citation_precision")),
        "citation_coverage": mean(col("citation_coverage")),
        "answer_in_context": mean(col("answer_in_context")),
        "ttft_p50_s": percentile(col("ttft_s"), 50),
        "ttft_p95_s": percentile(col("ttft_s"), 95),
        "total_p50_s": percentile(col("total_s"), 50),
        "total_p95_s": percentile(col("total_s"), 95),
        # Answer-path metrics: None where no record has them (the oracle, an extractive answer's LLM share).
        **{
            k: (mean(col(c)) if col(c) else None)
            for k, c in (("answer_in_evidence", "answer_in_evidence"), ("evidence_chars", "evidence_chars"),
                         ("supported_rate", "supported_rate"), ("llm_supported_rate", "llm_supported_rate"),
                         ("abstain_rate", "abstained"))
        },
        **{k: mean(col(k)) for k in ("page_hit@5", "answer_in_passages@5") if col(k)},
        "prompt_tokens_mean": mean(col("prompt_tokens")),
        "cached_tokens_mean": mean(col("cached_tokens")),
        "errors": sum(1 for r in records if r.get("error")),
        "questions": len(records),
    }
    return row


def _score(q: Question, text: str, cited: Sequence[str], context: Sequence[str]) -> dict:
    gold = set(q.gold)
    answer = strip_citations(text)
    return {
        "em": exact_match(answer, q.answers),
        "f1": token_f1(answer, q.answers),
        "citation_precision": (sum(c in gold for c in cited) / len(cited)) if cited else None,
        "citation_coverage": (len(gold & set(cited)) / len(gold)) if gold else None,
        "answer_in_context": float(answer_in("\n".join(context), q.answers)),
    }


def evaluate_config(
    rag, dataset: Dataset, overrides: dict, progress: Callable[[int, int], None] | None = None
) -> tuple[dict[str, float], list[dict]]:
    """Answer every question through :meth:`RAG.ask` with ``overrides``; → (summary row, per-question records)."""
    records = []
    for i, q in enumerate(dataset.questions):
        records.append(_record(q, rag.ask(q.question, **overrides)))
        if progress:
            progress(i + 1, len(dataset.questions))
    return _row(records), records


EVIDENCE_SENTENCES, EVIDENCE_CHARS = 2, 400  # the evidence a reader is shown, as issue #16 caps it


def shown_evidence(answer, max_sentences: int = EVIDENCE_SENTENCES, max_chars: int = EVIDENCE_CHARS) -> str:
    """The highlighted evidence sentences, best first, capped at 2 sentences / 400 characters."""
    texts: list[str] = []
    used = 0
    for citation, span in answer.evidence:
        piece = " ".join(citation.text[span.start : span.end].split())
        if texts and (len(texts) >= max_sentences or used + len(piece) > max_chars):
            break
        texts.append(piece[: max_chars - used] if not texts else piece)
        used += len(piece)
    return " ".join(texts)


def support_rates(answer) -> tuple[float | None, float | None]:
    """(share of the shown answer's sentences a passage supports, share of the LLM's own sentences supported).

    The same check as ``grounded`` mode, applied to any mode's text; the second
    counts the sentences a grounded answer left out as unsupported.
    """
    from rag.answer.base import QUOTE_LEAD, answer_sentences
    from rag.answer.support import check
    from rag.evidence.sentences import candidate_sentences

    if not answer.text or answer.abstained:
        return None, None
    candidates = candidate_sentences(answer.passages)
    verdicts = [check(answer.text[a:b], answer.question, candidates).supported for a, b in answer_sentences(answer.text)]
    if not verdicts:
        return None, None
    shown = sum(verdicts) / len(verdicts)
    if answer.mode == "extractive":
        return shown, None
    if answer.mode != "grounded":
        return shown, shown
    kept = 0 if answer.text.startswith(QUOTE_LEAD) else len(answer.sentences)
    total = kept + len(answer.unsupported)
    return shown, (kept / total if total else None)


def _doc_score(q: DocQuestion, answer) -> dict:
    """Scores for a document-style question: gold pages instead of gold passages, substring answer match."""
    by_id = {h.chunk.id: h for h in answer.passages}
    cited = [by_id[c.chunk_id] for c in answer.citations if c.chunk_id in by_id]
    text = strip_citations(answer.text)
    return {
        "em": exact_match(text, q.answers),
        "f1": token_f1(text, q.answers),
        "citation_precision": (sum(is_gold_hit(h, q) for h in cited) / len(cited)) if cited else None,
        "citation_coverage": float(any(is_gold_hit(h, q) for h in cited)),
        "answer_in_context": float(answer_in_passages(answer.passages, q.answers, k=len(answer.passages))),
        "page_hit@5": float(page_hit(answer.passages, q, 5)),
        "answer_in_passages@5": float(answer_in_passages(answer.passages, q.answers, 5)),
    }


def _record(q: Question | DocQuestion, answer, **extra) -> dict:
    """One scored answer with its timings, token counts, evidence and support checks."""
    evidence = shown_evidence(answer)
    if isinstance(q, DocQuestion):
        rec = _doc_score(q, answer)
        in_evidence = text_has_answer(evidence, q.answers)
    else:
        passage_of = dict(zip((h.chunk.id for h in answer.passages), hit_ids(answer.passages)))
        cited = list(dict.fromkeys(passage_of[c.chunk_id] for c in answer.citations if c.chunk_id in passage_of))
        rec = _score(q, answer.text, cited, [h.chunk.text for h in answer.passages])
        in_evidence = answer_in(evidence, q.answers)
    shown, own = support_rates(answer)
    rec.update(
        answer_in_evidence=float(in_evidence),
        evidence_chars=len(evidence),
        supported_rate=shown,
        llm_supported_rate=own,
        abstained=float(answer.abstained),
        mode=answer.mode,
    )
    rec.update(
        id=q.id,
        prediction=answer.text,
        ttft_s=answer.timings.get("ttft_s"),
        total_s=answer.timings.get("total_s"),
        prompt_tokens=answer.usage.prompt_tokens,
        cached_tokens=answer.usage.cached_tokens,
        error=answer.error,
        **extra,
    )
    return rec


def evaluate_chat(
    rag, dataset: Dataset, overrides: dict, progress: Callable[[int, int], None] | None = None
) -> tuple[dict[str, float], list[dict]]:
    """Each question as a conversation: its hops asked one by one, then the question itself.

    A user who chats asks "What company published X?", then "Who was the first
    president of <that company>?", then the full question, in one session. Only
    the last turn is scored; its timings and cached tokens show the prefix reuse,
    and the context order (``order`` in ``overrides``) decides which passages it
    sees where: ``stable`` keeps earlier turns' passages in place and appends,
    ``relevance`` shows this turn's passages by score. A question without hops
    is a one-turn conversation.
    """
    records = []
    for i, q in enumerate(dataset.questions):
        session = f"eval-chat-{q.id}-{overrides.get('order', '')}"
        history: list[tuple[str, str]] = []
        for step in q.steps:
            earlier = rag.ask(step, list(history), session=session, **overrides)
            history.append((step, earlier.text))
        answer = rag.ask(q.question, list(history), session=session, **overrides)
        records.append(_record(q, answer, turns=len(history) + 1))
        if progress:
            progress(i + 1, len(dataset.questions))
    return _row(records), records


def evaluate_oracle(
    engine,
    dataset: Dataset,
    settings,
    progress: Callable[[int, int], None] | None = None,
    rank: Callable[[str, Sequence[Hit]], Sequence[Evidence]] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """The same engine and prompt given only each question's gold passages (the reading ceiling).

    ``rank`` ranks the gold passages' sentences (the evidence scorer), so a completion engine gets the same
    key sentences before the question as the ``generative`` mode does (:func:`rag.answer.generative.key_sentences`).
    """
    records = []
    for i, q in enumerate(dataset.questions):
        hits = dataset.gold_hits(q)
        keys = key_sentences(rank(q.question, hits)) if rank is not None else ()
        request = answer_request(engine, q.question, hits, (), settings, keys)
        t0 = time.perf_counter()
        text, usage = generate(
            engine, request.prompt, max_tokens=request.max_tokens, stop=request.stop, temperature=settings.temperature
        )
        total = time.perf_counter() - t0
        text, citations = cite(text, hits)
        by_id = {h.chunk.id: h for h in hits}
        cited = list(dict.fromkeys(hit_ids([by_id[c.chunk_id] for c in citations])))
        rec = _score(q, text, cited, [h.chunk.text for h in hits])
        rec.update(
            id=q.id,
            prediction=text,
            ttft_s=usage.ttft_s or None,
            total_s=total,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
        )
        records.append(rec)
        if progress:
            progress(i + 1, len(dataset.questions))
    return _row(records), records


def plot_configs(configs: dict[str, dict], oracle: dict | None, path: str) -> None:
    """Save a bar chart of EM/F1 per configuration (and the oracle) to ``path``."""
    from rag.extras import require

    require("matplotlib", "eval")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = dict(configs)
    if oracle:
        rows["oracle"] = oracle
    names = list(rows)
    fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(names)), 4))
    width = 0.25
    for j, metric in enumerate(("em", "f1", "answer_in_context")):
        ax.bar([i + (j - 1) * width for i in range(len(names))], [rows[n][metric] for n in names], width, label=metric)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Answer quality per configuration")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
