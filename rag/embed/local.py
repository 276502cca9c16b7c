"""In-process embedder: all-MiniLM-L6-v2 from its PyPI package, via sentence-transformers."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

import numpy as np

from rag.config import Settings
from rag.embed.base import EMBEDDERS, normalize
from rag.extras import require
from rag.models import EMBED_MODEL_ID, embedder_dir, offline_env

log = logging.getLogger(__name__)


class LocalEmbedder:
    """sentence-transformers on the CPU; batches are length-sorted to cut padding."""

    def __init__(self, models_dir, batch_size: int = 32) -> None:
        offline_env()
        st = require("sentence_transformers", "local")
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
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            with self._lock, self._autocast():
                vecs = self.model.encode(
                    [texts[i] for i in idx],
                    batch_size=len(idx),
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            out[idx] = vecs
            done += len(idx)
            if progress:
                progress(done, len(texts))
        return normalize(out)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())


@EMBEDDERS.register("local")
def _make(settings: Settings):
    """The local embedder on the runtime ``settings.embed_backend`` names (onnx unless torch is asked for)."""
    if settings.embed_backend == "torch":
        return LocalEmbedder(settings.models_dir, batch_size=settings.embed_batch_size)
    from rag.embed.onnx import OnnxEmbedder  # noqa: PLC0415  (onnxruntime only when used)

    return OnnxEmbedder(
        settings.models_dir, batch_size=settings.embed_batch_size, quantize=settings.embed_backend == "onnx-int8"
    )
