"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint."""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from rag.config import Settings
from rag.embed.base import EMBEDDERS, normalize
from rag.errors import EngineError, EngineUnavailable


class OpenAIEmbedder:
    """Calls ``embeddings.create`` in batches; token counts are a word-based estimate."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout_s: float = 60.0, batch_size: int = 64) -> None:
        import openai

        self._openai = openai
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=1)
        self.base_url = base_url
        self.model_id = model
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                resp = self.client.embeddings.create(model=self.model_id, input=batch)
            except self._openai.APIConnectionError as exc:
                raise EngineUnavailable(
                    f"embedding server {self.base_url} is unreachable: check HOPRAG_EMBED_BASE_URL and that the server runs"
                ) from exc
            except self._openai.OpenAIError as exc:
                raise EngineError(f"embedding server {self.base_url} failed: {exc}") from exc
            rows.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
            if progress:
                progress(min(start + len(batch), len(texts)), len(texts))
        if not rows:
            return np.zeros((0, 1), dtype=np.float32)
        return normalize(np.asarray(rows, dtype=np.float32))

    def count_tokens(self, text: str) -> int:
        # Roughly 1.3 tokens per word for English BPE vocabularies.
        return int(len(re.findall(r"\w+|[^\w\s]", text)) * 1.3) + 1


@EMBEDDERS.register(
    "openai", reads={"embed_base_url", "embed_model", "embed_api_key", "llm_timeout_s", "embed_batch_size"}
)
def _make(settings: Settings) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        settings.embed_base_url,
        settings.embed_model,
        api_key=settings.embed_api_key,
        timeout_s=settings.llm_timeout_s,
        batch_size=max(settings.embed_batch_size, 1),
    )
