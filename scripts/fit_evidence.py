"""Fit the ``hybrid`` evidence scorer's weights over rag.evidence.features.

    .venv/bin/python scripts/fit_evidence.py \
        --set ../shared/eval/musique:hops --set ../shared/eval/manuals:hybrid:/path/to/pdfs [--cache /tmp/evfeat]

Each ``--set`` is ``DATASET:STRATEGY[:DOCUMENTS]``. For every question the
top-5 passages are retrieved and their sentences' cosine and BM25 scores cached
(``--cache``); features are recomputed from them on every run, so a new feature
costs seconds. The weights are fitted listwise (softmax over a question's
sentences, the sentences holding the gold answer as the target, L2) on the first
half of each set's questions, then a temperature and bias are fitted pointwise
(logistic) so the score is a calibrated probability. The figures of both halves
(answer in the top 1/2/3 sentences) are printed, then the weights to paste into
rag/evidence/hybrid.py. ``--without-gold`` also caches each question with its
gold passages dropped and prints the best-score distributions for the abstain
threshold.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.eval.documents import text_has_answer
from rag.eval.evidence import eval_items, load_eval_dataset, open_eval_kb, retrieve_for
from rag.eval.metrics import answer_in
from rag.evidence import ScorerContext, candidate_sentences
from rag.evidence.embedding import VectorCache, cosines
from rag.evidence.features import FEATURES, residual_question, sentence_features
from rag.evidence.lexical import bm25_scores


def ingredients(spec: str, cache: Path, without_gold: bool = False) -> list[dict]:
    """Per question: its sentences, hits, cosine and BM25 scores (cached)."""
    parts = spec.split(":")
    path, strategy, documents = parts[0], parts[1], (parts[2] if len(parts) > 2 else None)
    key = hashlib.sha256(f"{spec}|{without_gold}|v3".encode()).hexdigest()[:12]
    file = cache / f"{Path(path).name}-{strategy}-{key}.pkl"
    if file.exists():
        return pickle.loads(file.read_bytes())
    ds = load_eval_dataset(path, documents)
    out = []
    with open_eval_kb(ds, Settings.load()) as rag:
        vectors = VectorCache(lambda: rag.embedder)
        for item in eval_items(ds):
            hits = retrieve_for(rag, item, 5, strategy, without_gold)
            sents = candidate_sentences(hits)
            out.append({
                "id": item.id, "question": item.question, "answers": item.answers, "documents": item.documents,
                "sentences": sents, "hits": hits,
                "cos": cosines(vectors, item.question, sents, hits),
                "cos_resid": cosines(vectors, residual_question(item.question, hits), sents, hits),
                "bm25": bm25_scores(item.question, [s.text for s in sents]),
            })
    cache.mkdir(parents=True, exist_ok=True)
    file.write_bytes(pickle.dumps(out))
    return out


def has_answer(q: dict, text: str) -> bool:
    return text_has_answer(text, q["answers"]) if q["documents"] else answer_in(text, q["answers"])


def featurise(questions: list[dict]) -> None:
    for q in questions:
        q["X"] = sentence_features(
            q["question"], q["sentences"], q["hits"], q["cos"], q["bm25"], q["cos_resid"]
        ).astype(np.float64)
        q["y"] = np.array([has_answer(q, s.text) for s in q["sentences"]], dtype=np.float64)


def fit_listwise(questions: list[dict], l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    qs = [q for q in questions if len(q["y"]) and q["y"].max() > 0]

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for q in qs:
            s = q["X"] @ w
            s -= s.max()
            p = np.exp(s)
            p /= p.sum()
            pos = q["y"] > 0
            pp = p[pos].sum()
            total -= np.log(pp + 1e-12)
            grad += q["X"].T @ p - q["X"][pos].T @ (p[pos] / pp)
        return total / len(qs) + l2 * w @ w, grad / len(qs) + 2 * l2 * w

    return minimize(loss, np.zeros(len(FEATURES)), jac=True, method="L-BFGS-B").x


def calibrate(questions: list[dict], w: np.ndarray) -> tuple[float, float]:
    """Temperature a and bias b so sigmoid(a * (X @ w) + b) is P(sentence holds the answer)."""
    from scipy.optimize import minimize

    s = np.concatenate([q["X"] @ w for q in questions if len(q["y"])])
    y = np.concatenate([q["y"] for q in questions if len(q["y"])])

    def loss(p):
        z = p[0] * s + p[1]
        return float(np.mean(np.logaddexp(0, z) - y * z))

    a, b = minimize(loss, np.array([1.0, -3.0]), method="Nelder-Mead").x
    return float(a), float(b)


def topk(questions: list[dict], w: np.ndarray) -> dict[str, float]:
    out = {}
    for k in (1, 2, 3):
        n = 0
        for q in questions:
            if not len(q["y"]):
                continue
            s = q["X"] @ w
            order = sorted(range(len(s)), key=lambda i: (-s[i], q["sentences"][i].hit, q["sentences"][i].start))
            n += has_answer(q, " ".join(q["sentences"][i].text for i in order[:k]))
        out[f"top{k}"] = round(n / len(questions), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", required=True)
    ap.add_argument("--cache", default="/tmp/evfeat")
    ap.add_argument("--l2", type=float, default=0.01)
    ap.add_argument("--without-gold", action="store_true")
    args = ap.parse_args()
    cache = Path(args.cache)
    train, halves = [], {}
    for spec in args.set:
        qs = ingredients(spec, cache)
        featurise(qs)
        half = len(qs) // 2
        train += qs[:half]
        halves[spec] = (qs[:half], qs[half:])
    w = fit_listwise(train, args.l2)
    a, b = calibrate(train, w)
    for spec, (tune, check) in halves.items():
        print(spec, "tune half", topk(tune, w), "check half", topk(check, w))
    weights = {name: round(float(v * a), 3) for name, v in zip(FEATURES, w) if abs(v * a) >= 5e-4}
    print("WEIGHTS =", weights)
    print("BIAS =", round(b, 3))
    if args.without_gold:
        for spec in args.set:
            for label, qs in (("answerable", halves[spec][0] + halves[spec][1]),
                              ("gold removed", ingredients(spec, cache, without_gold=True))):
                featurise(qs)
                best = [1 / (1 + np.exp(-(a * (q["X"] @ w).max() + b))) if len(q["y"]) else 0.0 for q in qs]
                print(spec, label, "best-score quantiles 10/25/50/75/90:",
                      [round(float(x), 3) for x in np.quantile(best, [0.1, 0.25, 0.5, 0.75, 0.9])])


if __name__ == "__main__":
    main()
