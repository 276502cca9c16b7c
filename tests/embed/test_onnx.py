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
from rag.models import EMBED_MODEL_ID, embed_model_id, embedder_dir

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
    # A token budget big enough for one padded batch of every text, long and short.
    return OnnxEmbedder(models_dir, batch_size=8, batch_tokens=4096)


@pytest.fixture(scope="module")
def torch_embedder(base_settings):
    """The torch runtime (embed_backend=torch): the reference the onnx export is checked against."""
    return make_embedder(base_settings.replace(embed_backend="torch"))


def _torch_fp32(embedder, texts):
    # The torch embedder's model without its bfloat16 autocast: the float32 reference.
    return embedder.model.encode(texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True)


def test_vectors_match_torch_float32(onnx_embedder, torch_embedder):
    embedder = torch_embedder
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


def test_token_budget_splits_batches_without_changing_vectors(onnx_embedder, models_dir):
    lengths = [len(onnx_embedder.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in TEXTS]
    seen: list[int] = []
    small = OnnxEmbedder(models_dir, batch_size=8, batch_tokens=64)
    run = small._embed_batch
    small._embed_batch = lambda rows: (seen.append(len(rows) * max(map(len, rows))), run(rows))[1]
    progress: list[tuple[int, int]] = []
    got = small.embed(TEXTS, progress=lambda done, total: progress.append((done, total)))
    # Every batch keeps to the budget unless one text alone is longer than it.
    assert all(padded <= 64 or padded in lengths for padded in seen) and len(seen) > 1
    assert progress[-1] == (len(TEXTS), len(TEXTS)) and len(progress) == len(seen)
    assert np.allclose(got, onnx_embedder.embed(TEXTS), atol=1e-5)


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


def test_int8_vectors_are_close_and_kept_apart(models_dir, onnx_embedder):
    int8 = OnnxEmbedder(models_dir, batch_size=8, batch_tokens=4096, quantize=True)
    assert int8.path.name.endswith("-int8.onnx") and int8.path != onnx_embedder.path
    # Its own model id: the embedding cache never mixes int8 and float32 vectors.
    assert int8.model_id == embed_model_id(int8=True) != onnx_embedder.model_id
    exact, got = onnx_embedder.embed(TEXTS), int8.embed(TEXTS)
    assert (exact * got).sum(axis=1).min() >= 0.97
    # Close enough that each text still finds itself first among the others.
    assert list((got @ exact.T).argmax(axis=1)) == list(range(len(TEXTS)))
    assert OnnxEmbedder(models_dir, quantize=True).path == int8.path  # quantized once, then reused


def test_backend_setting(base_settings):
    assert Settings().embed_backend == "onnx-int8"
    with pytest.raises(ConfigError) as err:
        Settings(embed_backend="tensorrt")
    assert "tensorrt" in str(err.value)
    for name in ("onnx", "onnx-int8", "torch"):
        assert name in str(err.value)
    assert Settings.load(env={"HOPRAG_EMBED_BACKEND": "torch"}).embed_backend == "torch"
    # The default backend builds the int8 onnx embedder from the shared model cache.
    made = make_embedder(base_settings)
    assert isinstance(made, OnnxEmbedder) and made.model_id == embed_model_id(int8=True)
    exact = make_embedder(base_settings.replace(embed_backend="onnx"))
    assert isinstance(exact, OnnxEmbedder) and exact.model_id == EMBED_MODEL_ID
