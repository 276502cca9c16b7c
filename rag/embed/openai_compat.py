"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint.

Batches go out in parallel (at most ``embed_concurrency`` requests in flight) and come back in
input order; a batch that fails with a connection error, a timeout, 408/409/429 or a 5xx is
retried ``embed_retries`` times by the openai client (exponential backoff, honouring
``Retry-After``) before the whole call fails.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Sequence

import numpy as np

from rag.config import Settings
from rag.embed.base import EMBEDDERS, normalize
from rag.errors import EngineError, EngineUnavailable


class OpenAIEmbedder:
    """Calls ``embeddings.create`` in parallel batches; token counts are a word-based estimate."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout_s: float = 60.0, batch_size: int = 64,
                 concurrency: int = 4, retries: int = 3) -> None:
        import openai

        self._openai = openai
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                                    max_retries=retries)
        self.base_url = base_url
        self.model_id = model
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)

    def _batch(self, batch: list[str]) -> list[list[float]]:
        try:
            resp = self.client.embeddings.create(model=self.model_id, input=batch)
        except self._openai.APIConnectionError as exc:
            raise EngineUnavailable(
                f"embedding server {self.base_url} is unreachable: check HOPRAG_EMBED_BASE_URL and that the server runs"
            ) from exc
        except self._openai.OpenAIError as exc:
            raise EngineError(f"embedding server {self.base_url} failed: {exc}") from exc
        rows = [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]
        if len(rows) != len(batch):
            raise EngineError(f"embedding server {self.base_url} returned {len(rows)} vectors for {len(batch)} texts")
        return rows

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        results: list[list[list[float]] | None] = [None] * len(batches)
        done = 0
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(len(batches), 1))) as pool:
            futures = {pool.submit(self._batch, b): i for i, b in enumerate(batches)}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    results[i] = fut.result()
                    done += len(batches[i])
                    if progress:
                        progress(done, len(texts))
            except BaseException:
                for fut in futures:  # one batch failed for good: send no more
                    fut.cancel()
                raise
        rows = [row for part in results if part for row in part]
        if not rows:
            return np.zeros((0, 1), dtype=np.float32)
        return normalize(np.asarray(rows, dtype=np.float32))

    def count_tokens(self, text: str) -> int:
        # Roughly 1.3 tokens per word for English BPE vocabularies.
        return int(len(re.findall(r"\w+|[^\w\s]", text)) * 1.3) + 1


@EMBEDDERS.register(
    "openai",
    reads={"embed_base_url", "embed_model", "embed_api_key", "llm_timeout_s", "embed_batch_size", "embed_concurrency",
           "embed_retries"},
)
def _make(settings: Settings) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        settings.embed_base_url,
        settings.embed_model,
        api_key=settings.embed_api_key,
        timeout_s=settings.llm_timeout_s,
        batch_size=max(settings.embed_batch_size, 1),
        concurrency=settings.embed_concurrency,
        retries=settings.embed_retries,
    )
