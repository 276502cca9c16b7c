"""In-process vLLM (GPU only, extra ``vllm``) with automatic prefix caching.

Imported lazily: nothing here touches vllm until an engine is built.
"""

from __future__ import annotations

import time
from typing import Iterator, Sequence

from rag.config import Settings
from rag.engines.base import ENGINES, PromptLike, completion_text, match_candidates, provides
from rag.errors import EngineError
from rag.extras import require
from rag.types import Usage


class VLLMEngine:
    """``vllm.LLM(model, enable_prefix_caching=True)``; yields the whole completion at once."""

    name = "vllm"
    takes_messages = False  # ``LLM.generate`` on raw text; prefix caching reuses the completion prompt
    default_max_tokens = 1024

    def __init__(self, model: str) -> None:
        torch = require("torch", "local")
        # Checked before importing vllm: on a CPU machine the message says what to use instead.
        if not torch.cuda.is_available():
            raise EngineError("engine 'vllm' needs a CUDA GPU; on a CPU use engine 'local' or a server via HOPRAG_LLM_BASE_URL")
        vllm = require("vllm", "vllm")
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, enable_prefix_caching=True)

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
        params = self._vllm.SamplingParams(max_tokens=max_tokens, temperature=temperature, stop=list(stop) or None)
        out = self.llm.generate([completion_text(prompt, self.name)], params)[0]
        total = time.perf_counter() - t0
        yield out.outputs[0].text
        yield Usage(
            prompt_tokens=len(out.prompt_token_ids or []),
            cached_tokens=int(getattr(out, "num_cached_tokens", 0) or 0),
            completion_tokens=len(out.outputs[0].token_ids),
            ttft_s=total,
            total_s=total,
        )

    def close(self) -> None:
        pass

    # ---- next-token scoring (rerankers) --------------------------------------------
    def next_token_logprobs_batch(self, prompts: Sequence[str], candidates: Sequence[str]) -> list[dict[str, float]]:
        """One batched ``generate`` of a single token with the top 20 logprobs per prompt (prefix caching shares
        the prompts' common start); candidates are matched as in the OpenAI-compatible engine."""
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=20)
        results = []
        for out in self.llm.generate(list(prompts), params):
            top = {lp.decoded_token: float(lp.logprob) for lp in out.outputs[0].logprobs[0].values()}
            results.append(match_candidates(top, candidates))
        return results


@ENGINES.register("vllm", reads={"llm_model"})
@provides(VLLMEngine)
def _make(settings: Settings) -> VLLMEngine:
    if not settings.llm_model:
        raise EngineError("engine 'vllm' needs HOPRAG_LLM_MODEL (a model folder or hub id already on disk)")
    return VLLMEngine(settings.llm_model)
