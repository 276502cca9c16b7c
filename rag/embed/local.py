"""In-process embedder: all-MiniLM-L6-v2 from its PyPI package, via sentence-transformers."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

import numpy as np

from rag.config import Settings
from rag.embed.base import EMBEDDERS, embed_batches, length_sorted_batches
from rag.extras import require
from rag.models import EMBED_MODEL_ID, embedder_dir, offline_env

log = logging.getLogger(__name__)


class LocalEmbedder:
    """sentence-transformers on the CPU; batches are length-sorted to cut padding."""

    def __init__(self, models_dir, batch_size: int = 32, threads: int = 0) -> None:
        offline_env()
        st = require("sentence_transformers", "local")
        if threads:
            require("torch", "local").set_num_threads(threads)  # torch's pool is per process
        path = embedder_dir(models_dir)
        self.model = st.SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.tokenizer = self.model.tokenizer
        self.model_id = EMBED_MODEL_ID
        self.batch_size = batch_size
        self.max_tokens = int(self.model.max_seq_length)
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads
        # bfloat16 matmuls halve embedding time on CPUs with native bf16 (AVX512-BF16,
        # AMX) and give the same vectors (cosine >= 0.9999 to float32); elsewhere
        # emulated bf16 would be slower, so float32 stays.
        torch = require("torch", "local")
        self.bf16 = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        self._autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        batches = length_sorted_batches([len(t) for t in texts], self.batch_size)
        return embed_batches(len(texts), self.dim, batches, lambda idx: self._embed_batch([texts[i] for i in idx]), progress)

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        with self._lock, self._autocast():
            return self.model.encode(
                batch, batch_size=len(batch), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
            )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())


@EMBEDDERS.register(
    "local", reads={"cache_dir", "embed_backend", "embed_batch_size", "embed_batch_tokens", "embed_threads"}
)
def _make(settings: Settings):
    """The local embedder on the runtime ``settings.embed_backend`` names (onnx unless torch is asked for)."""
    if settings.embed_backend == "torch":
        return LocalEmbedder(settings.models_dir, batch_size=settings.embed_batch_size, threads=settings.embed_threads)
    from rag.embed.onnx import OnnxEmbedder  # noqa: PLC0415  (onnxruntime only when used)

    return OnnxEmbedder(
        settings.models_dir,
        batch_size=settings.embed_batch_size,
        batch_tokens=settings.embed_batch_tokens,
        quantize=settings.embed_backend == "onnx-int8",
        threads=settings.embed_threads,
    )
