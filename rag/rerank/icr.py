"""``icr``: In-Context Reranking — score passages by the attention the query pays to them (arXiv 2410.02642)."""

from __future__ import annotations

import copy
import time

from rag.config import Settings
from rag.engines.base import ATTENTION
from rag.errors import ConfigError
from rag.prompts import load_prompt
from rag.rerank.base import RERANKERS, finish, passage_text
from rag.types import Hit, TraceStep

CALIBRATION_QUERY = "N/A"
LAYER_CHOICES = ("global", "all")


@RERANKERS.register("icr")
class ICRReranker:
    """One prompt with every passage and the query last; no text is generated.

    The instruction and passages run once into a KV cache. The query then runs
    on a copy of that cache with attention weights returned; so does the
    content-free query "N/A", whose attention (the model's bias toward some
    positions, e.g. the passages nearest the end) is subtracted. For each
    token, attention from the query tokens is averaged over them and summed
    over heads and layers; tokens below mean − 2·std are dropped as noise; a
    passage's score is the sum over its tokens.

    ``layers="global"`` (default) reads only the full-attention layers: on
    Gemma-3 the sliding-window layers see just the last 512 tokens, which
    measurably favours the passages nearest the query. Needs the local
    transformers engine (eager attention); servers do not expose attention.
    """

    name = "icr"
    needs = frozenset({ATTENTION})

    def __init__(self, engine, settings: Settings, layers: str = "global", calibrate: bool = True) -> None:
        if layers not in LAYER_CHOICES:
            raise ConfigError(f"ICR layers={layers!r} is not allowed; choose one of: {', '.join(LAYER_CHOICES)}")
        self.engine = engine
        self.max_chars = settings.rerank_passage_chars
        self.calibrate = calibrate
        types = list(getattr(engine.model.config, "layer_types", None) or [])
        every = list(range(engine.model.config.num_hidden_layers))
        self.layers = [i for i, t in enumerate(types) if t == "full_attention"] if layers == "global" and types else every
        template = load_prompt("rerank_icr")
        self.head, rest = template.split("{passages}", 1)
        self.mid, self.tail = rest.split("{query}", 1)

    def rerank(self, query: str, hits: list[Hit], k: int) -> tuple[list[Hit], TraceStep]:
        t0 = time.perf_counter()
        if len(hits) < 2:
            return finish(self.name, query, hits, list(range(len(hits))), [h.score for h in hits], k, t0)
        torch = self.engine.torch
        ids = self.engine.encode(self.head)
        spans: list[tuple[int, int]] = []
        for i, h in enumerate(hits, 1):
            # Each passage is tokenized on its own so its token span is exact.
            piece = self.engine.encode(f"[{i}] {passage_text(h, self.max_chars)}\n", add_bos=False)
            spans.append((len(ids), len(ids) + len(piece)))
            ids += piece
        ids += self.engine.encode(self.mid, add_bos=False)
        with self.engine.lock, torch.inference_mode():
            prefix = self.engine.model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1).past_key_values
            t_prefix = time.perf_counter() - t0
            token_scores, n_query = self._attention(prefix, len(ids), query)
            n_calib = 0
            if self.calibrate:
                calib, n_calib = self._attention(prefix, len(ids), CALIBRATION_QUERY)
                token_scores = token_scores - calib
        passage_tokens = torch.cat([token_scores[a:b] for a, b in spans])
        floor = passage_tokens.mean() - 2 * passage_tokens.std()
        kept = torch.where(token_scores >= floor, token_scores, torch.zeros_like(token_scores))
        scores = [float(kept[a:b].sum()) for a, b in spans]
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        return finish(
            self.name, query, hits, order, scores, k, t0,
            forward_tokens={"passages": len(ids), "query": n_query, "calibration": n_calib},
            prefix_s=round(t_prefix, 3), layers=self.layers, calibrated=self.calibrate,
        )

    def _attention(self, prefix, prefix_len: int, query: str):
        """Per prefix token: attention from the query's tokens, mean over them, summed over heads and layers."""
        torch = self.engine.torch
        q_ids = self.engine.encode(query, add_bos=False)
        suffix = q_ids + self.engine.encode(self.tail, add_bos=False)
        out = self.engine.model(
            input_ids=torch.tensor([suffix]),
            past_key_values=copy.deepcopy(prefix),  # the forward pass appends to the cache in place
            use_cache=True,
            output_attentions=True,
            logits_to_keep=1,
        )
        total = prefix_len + len(suffix)
        scores = torch.zeros(prefix_len)
        for layer in self.layers:
            att = out.attentions[layer][0, :, : len(q_ids), :]  # heads × query tokens × keys
            per_key = att.float().mean(dim=1).sum(dim=0)
            # A sliding-window layer's keys are only the last positions: align them to the end.
            offset = total - per_key.shape[-1]
            scores[offset:] += per_key[: prefix_len - offset]
        return scores, len(suffix)
