"""In-process engine: Gemma-3-270M (or any causal LM folder) with transformers on the CPU.

Decoding is a plain greedy/sampling loop over the model's forward pass, so the
engine controls the KV cache (prefix reuse) and can stream tokens.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from rag.config import Settings
from rag.engines.base import ATTENTION, ENGINES, KV_CACHE, LOGPROBS, TEXT, apply_stops
from rag.extras import require
from rag.models import llm_dir, offline_env
from rag.types import Usage

log = logging.getLogger(__name__)


class LocalEngine:
    """transformers causal LM on the CPU, float32, one forward at a time."""

    name = "local"
    capabilities = frozenset({TEXT, LOGPROBS, ATTENTION, KV_CACHE})

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:
        offline_env()
        self.torch = require("torch", "local")
        transformers = require("transformers", "local")
        if threads:
            self.torch.set_num_threads(threads)
        t0 = time.perf_counter()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        # eager attention: the ICR reranker reads attention weights.
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=self.torch.float32, local_files_only=True, attn_implementation="eager"
        )
        self.model.eval()
        self.load_s = time.perf_counter() - t0
        self.lock = threading.RLock()  # one forward at a time: torch uses both cores already
        log.info("loaded %s in %.1f s", model_dir, self.load_s)

    # ---- tokens ------------------------------------------------------------
    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if add_bos and self.tokenizer.bos_token_id is not None:
            ids = [self.tokenizer.bos_token_id] + ids
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # ---- generation ----------------------------------------------------------
    def _decode_ids(
        self, prompt_ids: list[int], max_tokens: int, temperature: float, stats: dict
    ) -> Iterator[str]:
        torch = self.torch
        eos = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<end_of_turn>")}
        t0 = time.perf_counter()
        with self.lock, torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1]
            generated: list[int] = []
            emitted = ""
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
                out = self.model(input_ids=torch.tensor([[token]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[0, -1]
            stats["completion_tokens"] = len(generated)

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        session: str | None = None,
    ) -> Iterator[str | Usage]:
        t0 = time.perf_counter()
        ids = self.encode(prompt)
        stats: dict = {}
        yield from apply_stops(self._decode_ids(ids, max_tokens, temperature, stats), stop)
        yield Usage(
            prompt_tokens=len(ids),
            cached_tokens=stats.get("cached_tokens", 0),
            completion_tokens=stats.get("completion_tokens", 0),
            ttft_s=stats.get("ttft_s", time.perf_counter() - t0),
            total_s=time.perf_counter() - t0,
        )

    def close(self) -> None:
        pass


@ENGINES.register("local")
def _make(settings: Settings) -> LocalEngine:
    return LocalEngine(llm_dir(settings.models_dir))
