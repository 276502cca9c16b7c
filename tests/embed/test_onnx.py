"""The onnxruntime embedder: built locally once, same vectors as the torch embedder, selectable by setting."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rag import Settings
from rag.embed import make_embedder
from rag.embed import onnx as onnx_mod
from rag.embed.onnx import OnnxEmbedder, onnx_model_path
from rag.errors import ConfigError
from rag.models import EMBED_MODEL_ID, embedder_dir

LONG = " ".join(f"word{i} of a long section about gnuplot axes and octave matrices." for i in range(80))
TEXTS = [
    "hi",
    "What is the capital of France?",
    "Gnuplot draws 2D and 3D plots; `set logscale y` switches the y axis to a log scale.",
    "Ünïcödé tëxt ✓ 日本語のテキスト",
    LONG,  # > 256 tokens: truncated the same way as sentence-transformers does
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, base_settings):
    """A fresh models dir sharing the extracted MiniLM folder, so the export really runs here."""
    root = tmp_path_factory.mktemp("models")
    (root / EMBED_MODEL_ID).symlink_to(embedder_dir(base_settings.models_dir), target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def onnx_embedder(models_dir):
    return OnnxEmbedder(models_dir, batch_size=8)


def _torch_fp32(embedder, texts):
    # The session embedder's model without its bfloat16 autocast: the float32 reference.
    return embedder.model.encode(texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True)


def test_vectors_match_torch_float32(onnx_embedder, embedder):
    assert embedder.count_tokens(LONG) > 300
    reference = _torch_fp32(embedder, TEXTS)
    # One padded batch holding the long and the short texts, and each text alone.
    batched = onnx_embedder.embed(TEXTS)
    single = np.stack([onnx_embedder.embed([t])[0] for t in TEXTS])
    for got in (batched, single):
        assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
        cosines = (got * reference).sum(axis=1)
        assert cosines.min() >= 0.999, cosines
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert onnx_embedder.count_tokens(LONG) == embedder.count_tokens(LONG)
    assert onnx_embedder.model_id == embedder.model_id  # same vectors, so they share the embedding cache


def test_export_is_cached_and_reused(models_dir, onnx_embedder, monkeypatch):
    path = onnx_embedder.path
    assert path.parent == models_dir / "onnx" and path.suffix == ".onnx"
    assert not list(path.parent.glob(".build-*"))  # no temp file left behind
    stamp = os.stat(path).st_mtime_ns

    def no_export(*args):
        raise AssertionError("the cached ONNX file should have been reused")

    monkeypatch.setattr(onnx_mod, "_export", no_export)
    assert onnx_model_path(models_dir) == path
    again = OnnxEmbedder(models_dir)
    assert again.path == path and os.stat(path).st_mtime_ns == stamp
    assert again.embed(["hi"]).shape == (1, 384)


def test_backend_setting(base_settings):
    assert Settings().embed_backend == "onnx"
    with pytest.raises(ConfigError) as err:
        Settings(embed_backend="tensorrt")
    assert "tensorrt" in str(err.value)
    for name in ("onnx", "onnx-int8", "torch"):
        assert name in str(err.value)
    assert Settings.load(env={"HOPRAG_EMBED_BACKEND": "torch"}).embed_backend == "torch"
    # The default backend builds the onnx embedder from the shared (already exported) cache.
    made = make_embedder(base_settings)
    assert isinstance(made, OnnxEmbedder) and made.model_id == EMBED_MODEL_ID
