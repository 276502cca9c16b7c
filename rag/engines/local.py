"""In-process engine: Gemma-3-270M (or any causal LM folder) with transformers on the CPU.

Decoding is a plain greedy/sampling loop over the model's forward pass, so the
engine controls the KV cache (prefix reuse) and can stream tokens.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from rag.config import ICR_LAYERS_FORMAT, Settings, parse_icr_layers
from rag.engines.base import ENGINES, PromptLike, apply_stops, completion_text, provides
from rag.errors import ConfigError
from rag.extras import require
from rag.kvcache import PrefixCache, copy_kv, kv_nbytes, snapshot_kv
from rag.models import llm_dir, offline_env
from rag.types import Prompt, Usage

log = logging.getLogger(__name__)


# Fewest new tokens worth a separate forward pass to take a snapshot after them.
MIN_SEGMENT = 16
# The content-free query whose attention (the model's positional bias) calibration subtracts.
CALIBRATION_QUERY = "N/A"


def select_layers(spec: str, layer_types: list[str], n_layers: int) -> list[int]:
    """The decoder layers whose attention is read, from a spec like ``global``, ``all`` or ``global@12``.

    ``global`` is the full-attention layers (all layers on a model without
    sliding windows); ``@N`` keeps those below N, so only N layers need to run.
    """
    kind, limit = parse_icr_layers(spec)
    layers = [
        i for i in range(min(limit or n_layers, n_layers))
        if kind == "all" or not layer_types or layer_types[i] == "full_attention"
    ]
    if not layers:
        raise ConfigError(
            f"setting rerank_icr_layers={spec!r} selects no layer of this model ({n_layers} layers); "
            f"use {ICR_LAYERS_FORMAT}"
        )
    return layers


class LocalEngine:
    """transformers causal LM on the CPU, float32, one forward at a time."""

    name = "local"
    takes_messages = False  # a base model: completion prompts
    default_max_tokens = 96  # short answers: the 270M model drifts after a sentence or two

    def __init__(self, model_dir: Path, threads: int | None = None, kv_cache_mb: int = 1024) -> None:
        """Load the model from ``model_dir``; ``kv_cache_mb`` > 0 keeps a prefix KV cache of that size."""
        offline_env()
        self.torch = require("torch", "local")
        transformers = require("transformers", "local")
        if threads:
            self.torch.set_num_threads(threads)
        t0 = time.perf_counter()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        # SDPA for speed; passes that read attention weights switch to eager (see attention_weights).
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=self.torch.float32, local_files_only=True, attn_implementation="sdpa"
        )
        self.model.eval()
        self.load_s = time.perf_counter() - t0
        self.lock = threading.RLock()  # one forward at a time: torch uses both cores already
        # Prefix KV cache (None = off); set it to None / a new PrefixCache to switch at run time.
        self.kv_cache: PrefixCache | None = PrefixCache(kv_cache_mb << 20, kv_nbytes) if kv_cache_mb > 0 else None
        log.info("loaded %s in %.1f s", model_dir, self.load_s)

    # ---- tokens ------------------------------------------------------------
    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if add_bos and self.tokenizer.bos_token_id is not None:
            ids = [self.tokenizer.bos_token_id] + ids
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, prompt: PromptLike) -> tuple[list[int], list[int], set[int]]:
        """(token ids, segment ends, snapshot points) of a prompt, token counts for the last two.

        A :class:`~rag.types.Prompt` is tokenized segment by segment at its
        boundaries, so a prefix tokenizes the same whatever follows it. With
        or without the KV cache, prefill splits its forward passes at the same
        snapshot points, which keeps greedy answers identical either way.
        """
        text = completion_text(prompt, self.name)
        if not isinstance(prompt, Prompt) or not prompt.boundaries:
            return self.encode(text), [], set()
        snap_chars = set(prompt.snapshots)
        ids: list[int] = []
        cuts: list[int] = []
        snaps: set[int] = set()
        start = 0
        for end in (*prompt.boundaries, len(text)):
            ids += self.encode(text[start:end], add_bos=start == 0)
            if end < len(text):
                cuts.append(len(ids))
                if end in snap_chars:
                    snaps.add(len(ids))
            start = end
        return ids, cuts, snaps

    def _prefill(self, ids: list[int], cuts: Sequence[int], snaps: set[int], stats: dict):
        """Run the prompt through the model, reusing and filling the prefix KV cache → (cache, last logits)."""
        cache = self.kv_cache
        past, start = None, 0
        if cache is not None:
            # Leave at least one token to run: its logits pick the first answer token.
            found, snapshot = cache.lookup(ids, max_len=len(ids) - 1)
            if snapshot is not None:
                past, start = copy_kv(snapshot), found
        stats["cached_tokens"] = start
        stats["prefill_tokens"] = len(ids) - start
        logits = None
        # A forward pass reads all the weights (~45 ms here, however few its tokens),
        # so the prompt runs in as few passes as the snapshots allow; a snapshot right
        # after the reused prefix is skipped (it would save the next turn little).
        ends = [c for c in cuts if c in snaps and start + MIN_SEGMENT <= c < len(ids)] + [len(ids)]
        for end in ends:
            past, logits = self.extend(ids[start:end], past, logits=end == len(ids))
            if cache is not None and end in snaps and ids[:end] not in cache:
                cache.insert(ids[:end], snapshot_kv(past))
            start = end
        assert logits is not None
        return past, logits

    def extend(self, ids: Sequence[int], past=None, *, logits: bool = True):
        """Run ``ids`` on top of the KV cache ``past`` (extended in place) → (cache, last-token logits or None).

        Without ``logits`` only the decoder stack runs: the output layer is a
        262k × 640 matrix (0.67 GB in float32) whose read costs a CPU ~50 ms even
        for one token, which is most of a short segment's time.
        """
        torch = self.torch
        model = self.model if logits else self.model.model
        extra = {"logits_to_keep": 1} if logits else {}
        out = model(input_ids=torch.tensor([list(ids)]), past_key_values=past, use_cache=True, **extra)
        return out.past_key_values, (out.logits[0, -1] if logits else None)

    @contextmanager
    def attention_weights(self):
        """Hold the engine with eager attention, so a forward pass can return attention weights.

        SDPA (the default, ~1.4x faster prefill) never materialises them.
        """
        with self.lock:
            self.model.set_attn_implementation("eager")
            try:
                yield
            finally:
                self.model.set_attn_implementation("sdpa")

    @contextmanager
    def truncated(self, depth: int):
        """Hold the engine with only its first ``depth`` decoder layers.

        For passes that read an early layer's attention: the layers above it
        would cost time and change nothing read. The KV cache filled meanwhile
        holds those layers only and must not be used for generation.
        """
        with self.lock:
            stack = self.model.model
            layers = stack.layers
            if not 0 < depth <= len(layers):
                raise ValueError(f"depth {depth} is not between 1 and {len(layers)}")
            stack.layers = layers[:depth]
            try:
                yield
            finally:
                stack.layers = layers

    # ---- attention (ICR reranking, the LLM sentence locator) ------------------------
    def attention_scores(
        self,
        segments: Sequence[str],
        query: str,
        tail: str = "",
        *,
        layers: str = "global@6",
        calibrate: bool = True,
        score_segments: Sequence[int] | None = None,
        trace: dict | None = None,
    ) -> list[float]:
        """Per segment, the attention ``query``'s tokens pay to it (see :class:`rag.engines.base.ExposesAttention`).

        The segments run once into a KV cache, with SDPA attention and only the
        layers up to the deepest one read (``global@6``: 6 of 18); the query (and
        the "N/A" calibration query) then run on copies of that cache with eager
        attention, and the weights are taken from hooks on the layers read.
        """
        torch = self.torch
        t0 = time.perf_counter()
        config = self.model.config
        read = select_layers(layers, list(getattr(config, "layer_types", None) or []), config.num_hidden_layers)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for i, segment in enumerate(segments):
            piece = self.encode(segment, add_bos=i == 0)
            spans.append((len(ids), len(ids) + len(piece)))
            ids += piece
        if not ids:
            return [0.0] * len(segments)
        with self.truncated(read[-1] + 1), torch.inference_mode():
            prefix, _ = self.extend(ids, logits=False)
            t_prefix = time.perf_counter() - t0
            with self.attention_weights():
                token_scores, n_query = self._query_attention(prefix, len(ids), query, tail, read)
                n_calib = 0
                if calibrate:
                    calib, n_calib = self._query_attention(prefix, len(ids), CALIBRATION_QUERY, tail, read)
                    token_scores = token_scores - calib
        scored = [spans[i] for i in (range(len(spans)) if score_segments is None else score_segments)]
        pool = torch.cat([token_scores[a:b] for a, b in scored]) if scored else token_scores
        floor = pool.mean() - 2 * pool.std() if pool.numel() > 1 else pool.min()
        kept = torch.where(token_scores >= floor, token_scores, torch.zeros_like(token_scores))
        if trace is not None:
            trace.update(
                forward_tokens={"passages": len(ids), "query": n_query, "calibration": n_calib},
                prefix_s=round(t_prefix, 3), layers=read, depth=read[-1] + 1, calibrated=calibrate,
            )
        return [float(kept[a:b].sum()) for a, b in spans]

    def _query_attention(self, prefix, prefix_len: int, query: str, tail: str, read: Sequence[int]):
        """Per prefix token: attention from the query's tokens, mean over them, summed over heads and layers."""
        torch = self.torch
        q_ids = self.encode(query, add_bos=False)
        suffix = q_ids + self.encode(tail, add_bos=False)
        # Weights are taken from the attention modules of the layers read (their
        # second output under eager attention) rather than ``output_attentions``,
        # whose collection transformers sets up for the layers present at the first
        # such call: a truncated stack then would hide the upper layers for good.
        weights: dict[int, object] = {}
        stack = self.model.model.layers
        hooks = [
            stack[i].self_attn.register_forward_hook(lambda mod, args, out, i=i: weights.__setitem__(i, out[1]))
            for i in read
        ]
        try:
            # On a copy: the forward pass appends to the cache in place. No logits: none are read.
            self.extend(suffix, copy.deepcopy(prefix), logits=False)
        finally:
            for hook in hooks:
                hook.remove()
        total = prefix_len + len(suffix)
        scores = torch.zeros(prefix_len)
        for layer in read:
            att = weights[layer][0, :, : len(q_ids), :]  # heads × query tokens × keys
            per_key = att.float().mean(dim=1).sum(dim=0)
            # A sliding-window layer's keys are only the last positions: align them to the end.
            offset = total - per_key.shape[-1]
            scores[offset:] += per_key[: prefix_len - offset]
        return scores, len(suffix)

    # ---- generation ----------------------------------------------------------
    def _decode_ids(
        self,
        prompt_ids: list[int],
        max_tokens: int,
        temperature: float,
        stats: dict,
        cuts: Sequence[int] = (),
        snaps: set[int] | None = None,
        t0: float | None = None,
    ) -> Iterator[str]:
        torch = self.torch
        eos = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<end_of_turn>")}
        t0 = time.perf_counter() if t0 is None else t0
        # The lock and inference mode are held per forward pass, never across a
        # yield: a consumer may resume this generator on another thread (web
        # servers do) or abandon it, and other requests interleave their steps.
        with self.lock, torch.inference_mode():
            past, logits = self._prefill(prompt_ids, cuts, snaps or set(), stats)
        generated: list[int] = []
        forwarded = 0  # generated tokens whose keys and values are in ``past``
        emitted = ""
        try:
            for _ in range(max_tokens):
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    token = int(torch.multinomial(probs, 1))
                else:
                    token = int(torch.argmax(logits))
                if token in eos:
                    break
                generated.append(token)
                text = self.tokenizer.decode(generated, skip_special_tokens=True)
                # A multi-byte character may be incomplete until its last token.
                if not text.endswith("\ufffd") and len(text) > len(emitted):
                    if not stats.get("ttft_s"):
                        stats["ttft_s"] = time.perf_counter() - t0
                    yield text[len(emitted):]
                    emitted = text
                if len(generated) == max_tokens:
                    break  # no forward pass for a token that will not be read
                with self.lock, torch.inference_mode():
                    past, logits = self.extend([token], past)
                forwarded += 1
        finally:
            # Also when the consumer stops early (a stop string): the count is still reported.
            stats["completion_tokens"] = len(generated)
            if forwarded:
                self._remember_answer(prompt_ids + generated[:forwarded], past)

    def _remember_answer(self, ids: list[int], past) -> None:
        """Keep the KV cache of prompt + answer: the next turn's prompt starts with it.

        A follow-up's prompt repeats this turn's prompt and answer (as history)
        when its passages are unchanged; then only the new question is
        prefilled. Whether the answer re-tokenizes to the same ids is checked
        by the lookup itself (token-prefix match); if not, the snapshot is
        never hit and ages out of the LRU.
        """
        cache = self.kv_cache
        # ``past`` is this generation's own cache and the tree locks itself: no engine lock needed.
        if cache is not None and past is not None and ids not in cache:
            cache.insert(ids, snapshot_kv(past))

    def stream(
        self,
        prompt: PromptLike,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        session: str | None = None,
    ) -> Iterator[str | Usage]:
        t0 = time.perf_counter()
        ids, cuts, snaps = self.prompt_ids(prompt)
        stats: dict = {}
        yield from apply_stops(self._decode_ids(ids, max_tokens, temperature, stats, cuts, snaps, t0), stop)
        yield Usage(
            prompt_tokens=len(ids),
            cached_tokens=stats.get("cached_tokens", 0),
            completion_tokens=stats.get("completion_tokens", 0),
            ttft_s=stats.get("ttft_s", time.perf_counter() - t0),
            total_s=time.perf_counter() - t0,
        )

    def close(self) -> None:
        pass

    # ---- next-token scoring (rerankers) --------------------------------------------
    def next_token_logprobs_batch(self, prompts: Sequence[str], candidates: Sequence[str]) -> list[dict[str, float]]:
        """Log-probability of each candidate being the next token after each prompt.

        Read from the raw logits over the whole vocabulary, so a candidate is
        never missing. A candidate counts with and without a leading space
        ("yes" and " yes" are different tokens); only its first token is used.
        The prompts' common token prefix (a shared instruction and query) runs
        once; each prompt continues from a copy of its KV cache (a copy because
        the forward pass extends the cache in place).
        """
        torch = self.torch
        seqs = [self.encode(p) for p in prompts]
        if not seqs:
            return []
        variants = {c: sorted({self.encode(v, add_bos=False)[0] for v in (c, " " + c.lstrip())}) for c in candidates}
        shared = 0
        # Leave at least one token per prompt to run on top of the shared prefix.
        limit = min(len(s) for s in seqs) - 1
        while shared < limit and all(s[shared] == seqs[0][shared] for s in seqs):
            shared += 1
        results: list[dict[str, float]] = []
        with self.lock, torch.inference_mode():
            prefix = None
            if shared and len(seqs) > 1:
                prefix, _ = self.extend(seqs[0][:shared], logits=False)
            else:
                shared = 0
            for seq in seqs:
                cache = copy.deepcopy(prefix) if prefix is not None else None
                out = self.model(
                    input_ids=torch.tensor([seq[shared:]]), past_key_values=cache, use_cache=True, logits_to_keep=1
                )
                logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
                results.append({c: float(torch.logsumexp(logp[ids], dim=0)) for c, ids in variants.items()})
        return results


@ENGINES.register("local", reads={"cache_dir", "kv_cache", "kv_cache_mb"})
@provides(LocalEngine)
def _make(settings: Settings) -> LocalEngine:
    return LocalEngine(llm_dir(settings.models_dir), kv_cache_mb=settings.kv_cache_mb if settings.kv_cache else 0)
