"""Settings: the one place configuration is read (``HOPRAG_*`` variables, ``.env``, ``hoprag.toml`` files).

Precedence, highest first: explicit keyword overrides (command-line flags) >
environment variables > ``./.env`` > ``./hoprag.toml`` > the user config file
(``hoprag.toml`` in the platform's user config dir, ``~/.config/hoprag`` on
Linux; ``$HOPRAG_CONFIG`` replaces both files) > defaults. ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` fill ``llm_api_key`` / ``llm_base_url`` when no hoprag
source sets them. An unknown ``HOPRAG_*`` variable is a warning that names the
closest setting. :func:`load_with_origins` also says where each value came
from (``hoprag config``). Everything else in hoprag takes explicit arguments.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from rag.errors import ConfigError

from rag import components

# Component names (engine, embedder, strategy, reranker, answer_mode, evidence_scorer, segmenter) are not
# listed here: validation asks their registries (rag.components.choices).
EMBED_BACKENDS = ("onnx-int8", "onnx", "torch")  # runtimes of the local embedder
ORDERS = ("stable", "relevance")
LLM_APIS = ("chat", "completions")
# Names app.py still imports from here: computed from the registries (prefer rag.components.choices).
def _default_data_dir() -> str:
    """The platform's user data dir (``~/.local/share/hoprag`` on Linux): one place, whatever the working dir."""
    import platformdirs

    return platformdirs.user_data_dir("hoprag", appauthor=False)


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "hoprag")


ICR_LAYERS_FORMAT = "'global' or 'all', optionally '@N' to read only layers below N (e.g. 'global@12')"


def parse_icr_layers(spec: str) -> tuple[str, int | None]:
    """Split an ICR layer spec (``global``, ``all``, ``global@12``) into its kind and layer limit."""
    match = re.fullmatch(r"(global|all)(?:@([1-9][0-9]*))?", spec)
    if not match:
        raise ConfigError(f"setting rerank_icr_layers={spec!r} is not allowed; use {ICR_LAYERS_FORMAT}")
    return match[1], int(match[2]) if match[2] else None


@dataclass(frozen=True)
class Settings:
    """All of hoprag's configuration.

    Build it with :meth:`Settings.load` (env + TOML) or directly with keywords;
    ``replace(**changes)`` returns a validated copy.
    """

    data_dir: str = dataclasses.field(default_factory=_default_data_dir)
    kb: str = "default"
    cache_dir: str = dataclasses.field(default_factory=_default_cache_dir)
    # LLM
    engine: str = "local"
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_api: str = "chat"
    llm_timeout_s: float = 60.0
    max_new_tokens: int = 0  # 0 = the engine's default (embedded model: short; servers: long)
    temperature: float = 0.0
    kv_cache: bool = True
    kv_cache_mb: int = 1024
    # embeddings
    embedder: str = "local"
    embed_base_url: str = ""
    embed_model: str = ""
    embed_api_key: str = ""  # sent to the embeddings server only (never the LLM's key)
    embed_batch_size: int = 32
    embed_batch_tokens: int = 1024  # onnx embedder: padded tokens per forward pass
    embed_backend: str = "onnx-int8"  # local embedder runtime: onnx-int8, onnx (float32, exact) or torch
    embed_threads: int = 0  # local embedder: CPU threads (0 = one per core; Ray ingest tasks use their CPUs)
    embed_concurrency: int = 4  # embeddings server: batches in flight at once
    embed_retries: int = 3  # embeddings server: retries of a failed batch (backoff, Retry-After honoured)
    # store
    chroma_url: str = ""
    lock_timeout_s: float = 120.0  # how long a write waits for another writer of the same index
    # Chroma's HNSW graph: set when a collection is created (ef_search also applied to existing ones)
    hnsw_max_neighbors: int = 32  # links per node (Chroma's default 16: recall@10 0.71 at 1M chunks)
    hnsw_ef_construction: int = 200  # candidates searched while inserting
    hnsw_ef_search: int = 500  # candidates searched per query
    # ingest
    segmenter: str = "structure"
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    max_file_mb: float = 50.0
    ocr_languages: str = "eng"  # Tesseract languages for scanned pages and images, e.g. "eng+deu"
    allow_private_urls: bool = False  # let URL ingest reach private, loopback and link-local addresses
    # query
    strategy: str = "single"
    top_k: int = 5
    hops: int = 2
    reranker: str = "none"
    rerank_candidates: int = 20
    rerank_window: int = 20  # listwise/first: passages per LLM call
    rerank_step: int = 10  # listwise/first: how far the window moves (back to front)
    rerank_with_scores: bool = False  # listwise/first: show first-stage scores (InsertRank)
    rerank_passage_chars: int = 600  # passages are cut to this many characters in rerank prompts
    rerank_icr_layers: str = "global@6"  # icr: layers read: global|all, optionally @N (only layers below N run)
    order: str = "stable"
    min_score: float = 0.0
    # answers: how the text is made and which sentences are shown as evidence
    answer_mode: str = "auto"  # extractive | generative | grounded; auto = grounded on the embedded model
    evidence_scorer: str = "hybrid"  # scores passage sentences for the evidence highlights
    evidence_sentences: int = 2  # evidence sentences quoted by an extractive answer
    evidence_chars: int = 400  # at most this many characters of quoted evidence
    abstain_threshold: float = 0.05  # below this best-evidence score (hybrid: a 0-1 probability) the answer abstains
    instructions: str = ""  # extra answer instructions after hoprag's rules (the API sets it from system messages)
    followup_rewrite: str = "auto"  # none | entities | llm (a follow-up made standalone for retrieval); auto = entities
    # hybrid: reciprocal rank fusion of dense and BM25 rankings
    fusion_dense_weight: float = 1.0
    fusion_bm25_weight: float = 0.5
    rrf_k: int = 10
    fusion_candidates: int = 50  # hits taken from each ranking before fusing
    # hops (LLM-free): link passages through shared rare names
    hop_branches: int = 5  # passages per hop that spawn links
    hop_pool: int = 50  # dense candidates scored per question
    hop_link_weight: float = 0.6  # weight of a link (name IDF scaled to [0, 1]) against cosine similarity
    hop_max_df: float = 0.05  # names in more than this share of chunks link nothing
    hop_title_weight: float = 0.25  # extra weight of a link whose name is the linked chunk's title
    hop_residual_weight: float = 0.4  # BM25 of the question words a parent lacks, on its linked chunks
    hop_lexical_weight: float = 0.4  # BM25 of those words plus the parent's rare names, on any chunk
    # server (hoprag serve): clients must send "Authorization: Bearer <api_key>" when set
    api_key: str = ""
    rate_limit_per_minute: int = 0  # hoprag serve: requests per minute per API key (0 = no limit)
    # web UI with users: a sign-in lasts this long, then the user signs in again
    session_minutes: int = 480

    def __post_init__(self) -> None:
        for name in components.REGISTRIES:
            _check_choice(name, getattr(self, name), components.choices(name))
        _check_choice("embed_backend", self.embed_backend, EMBED_BACKENDS)
        _check_choice("order", self.order, ORDERS)
        _check_choice("llm_api", self.llm_api, LLM_APIS)
        if self.max_new_tokens < 0:
            raise ConfigError(f"setting max_new_tokens={self.max_new_tokens!r} must be >= 0 (0 = the engine's default)")
        if self.embed_threads < 0:
            raise ConfigError(f"setting embed_threads={self.embed_threads!r} must be >= 0 (0 = one per core)")
        if self.hnsw_max_neighbors < 2:
            raise ConfigError(f"setting hnsw_max_neighbors={self.hnsw_max_neighbors!r} must be at least 2")
        if self.embed_retries < 0:
            raise ConfigError(f"setting embed_retries={self.embed_retries!r} must be >= 0")
        for name in ("top_k", "hops", "evidence_sentences", "evidence_chars", "chunk_tokens", "embed_batch_size",
                     "embed_batch_tokens", "rerank_candidates", "rerank_step", "rerank_passage_chars", "rrf_k",
                     "fusion_candidates", "hop_branches", "hop_pool", "embed_concurrency", "hnsw_ef_construction",
                     "hnsw_ef_search"):
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name}={getattr(self, name)!r} must be at least 1")
        for name in ("fusion_dense_weight", "fusion_bm25_weight", "hop_link_weight", "hop_title_weight",
                     "hop_residual_weight", "hop_lexical_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"setting {name}={getattr(self, name)!r} must be >= 0")
        if self.fusion_dense_weight == 0 and self.fusion_bm25_weight == 0:
            raise ConfigError("settings fusion_dense_weight and fusion_bm25_weight are both 0: one must be positive")
        if not 0 < self.hop_max_df <= 1:
            raise ConfigError(f"setting hop_max_df={self.hop_max_df!r} must be in (0, 1]")
        if not 2 <= self.rerank_window <= 26 or self.rerank_step > self.rerank_window:
            raise ConfigError(
                f"settings rerank_window={self.rerank_window}, rerank_step={self.rerank_step}: the window must be "
                "2-26 passages (FIRST labels them A-Z) and the step at most the window"
            )
        parse_icr_layers(self.rerank_icr_layers)
        if not re.fullmatch(r"[A-Za-z_]{3,}(\+[A-Za-z_]{3,})*", self.ocr_languages):
            raise ConfigError(
                f"setting ocr_languages={self.ocr_languages!r} is not allowed; use Tesseract language codes "
                "joined by '+', e.g. eng or eng+deu"
            )
        if self.session_minutes < 1:
            raise ConfigError(f"setting session_minutes={self.session_minutes!r} must be at least 1 (minutes)")
        if self.rate_limit_per_minute < 0:
            raise ConfigError(
                f"setting rate_limit_per_minute={self.rate_limit_per_minute!r} must be >= 0 (0 = no limit)"
            )
        if not self.lock_timeout_s > 0:
            raise ConfigError(f"setting lock_timeout_s={self.lock_timeout_s!r} must be a positive number of seconds")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ConfigError(
                f"setting chunk_overlap={self.chunk_overlap} must be >= 0 and below chunk_tokens={self.chunk_tokens}"
            )
        if self.engine == "openai" and not (self.llm_base_url and self.llm_model):
            raise ConfigError(
                "engine 'openai' needs HOPRAG_LLM_BASE_URL and HOPRAG_LLM_MODEL "
                "(e.g. http://127.0.0.1:8000/v1 and the served model name)"
            )
        if self.embedder == "openai" and not (self.embed_base_url and self.embed_model):
            raise ConfigError("embedder 'openai' needs HOPRAG_EMBED_BASE_URL and HOPRAG_EMBED_MODEL")
        for url_field in ("llm_base_url", "embed_base_url"):
            url = getattr(self, url_field)
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"setting {url_field}={url!r} is not an http(s) URL: use e.g. http://127.0.0.1:8000/v1"
                )
        if not self.kb or not all(c.isalnum() or c in "-_" for c in self.kb) or len(self.kb) > 48:
            raise ConfigError(
                f"knowledge base name {self.kb!r} is not allowed: use 1-48 letters, digits, '-' or '_'"
            )

    # ---- derived paths -------------------------------------------------
    @property
    def index_dir(self) -> Path:
        return Path(self.data_dir) / "index"

    @property
    def kb_dir(self) -> Path:
        return self.index_dir / self.kb

    @property
    def models_dir(self) -> Path:
        return Path(self.cache_dir) / "models"

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied and validated (unknown names are refused)."""
        _check_names(changes)
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        toml_path: str | Path | None = None,
        **overrides: Any,
    ) -> "Settings":
        """The settings from every source, in the order of the module docstring.

        ``env`` given: only that mapping is read (no ``.env``); ``toml_path``
        given: only that file (it must exist).
        """
        return load_with_origins(env, toml_path, **overrides)[0]


# Settings whose values `hoprag config` masks.
SECRETS = frozenset({"llm_api_key", "embed_api_key", "api_key"})
_warned_unknown: set[str] = set()


def config_files(env: Mapping[str, str], toml_path: str | Path | None = None) -> list[Path]:
    """The config files to read, lowest precedence first: the user config file, then ``./hoprag.toml``.

    ``toml_path`` or ``$HOPRAG_CONFIG`` names the one file instead (it must exist).
    """
    explicit = toml_path or env.get("HOPRAG_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (set by {'HOPRAG_CONFIG' if not toml_path else 'the caller'})")
        return [path]
    import platformdirs

    user = Path(platformdirs.user_config_dir("hoprag", appauthor=False)) / "hoprag.toml"
    return [p for p in (user, Path("hoprag.toml")) if p.is_file()]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    table = raw.get("hoprag", raw)
    _check_names(table, where=str(path))
    return {k: _coerce(k, v) for k, v in table.items()}


def _environment(env: Mapping[str, str] | None) -> tuple[Mapping[str, str], dict[str, str]]:
    """The variables to read and where each came from: the process environment over ``./.env`` (env=None)."""
    if env is not None:
        return env, {k: "environment" for k in env}
    from dotenv import dotenv_values

    dotenv = {k: v for k, v in dotenv_values(".env").items() if v is not None} if Path(".env").is_file() else {}
    where = {k: f".env ({Path('.env').resolve()})" for k in dotenv}
    where.update({k: "environment" for k in os.environ})
    return {**dotenv, **os.environ}, where


def _warn_unknown(key: str, known: set[str]) -> None:
    """Warn once per process about an unknown ``HOPRAG_*`` variable, naming the closest setting."""
    if key in _warned_unknown:
        return
    _warned_unknown.add(key)
    import difflib
    import logging

    close = difflib.get_close_matches(key[len("HOPRAG_"):].lower(), sorted(known), n=1, cutoff=0.7)
    hint = f"; did you mean HOPRAG_{close[0].upper()}?" if close else "; the settings are listed by  hoprag config"
    logging.getLogger(__name__).warning("ignoring unknown environment variable %s%s", key, hint)


def load_with_origins(
    env: Mapping[str, str] | None = None, toml_path: str | Path | None = None, **overrides: Any
) -> tuple["Settings", dict[str, str]]:
    """:meth:`Settings.load` and, per setting not at its default, where its value came from."""
    env, env_where = _environment(env)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path in config_files(env, toml_path):
        table = _read_toml(path)
        values.update(table)
        origins.update({k: f"file {path.resolve()}" for k in table})
    known = {f.name for f in fields(Settings)}
    for key, raw_value in env.items():
        if not key.startswith("HOPRAG_") or key == "HOPRAG_CONFIG":
            continue
        name = key[len("HOPRAG_"):].lower()
        if name not in known:
            _warn_unknown(key, known)
            continue
        values[name] = _coerce(name, raw_value)
        origins[name] = f"{env_where.get(key, 'environment')} {key}"
    _check_names(overrides)
    given = {k: _coerce(k, v) for k, v in overrides.items() if v is not None}
    values.update(given)
    origins.update({k: "command line / caller" for k in given})
    # A server URL without an explicit engine means "use that server".
    for url, component, server in (("llm_base_url", "engine", "openai"), ("embed_base_url", "embedder", "openai")):
        if values.get(url) and component not in values:
            values[component] = server
            origins[component] = f"implied by {url}"
    # OpenAI's own variables, where no hoprag source set the LLM's key or URL.
    for name, var in (("llm_api_key", "OPENAI_API_KEY"), ("llm_base_url", "OPENAI_BASE_URL")):
        if not values.get(name) and env.get(var):
            values[name] = _coerce(name, env[var])
            origins[name] = f"{env_where.get(var, 'environment')} {var} (fallback)"
    if values.get("engine") == "openai" and not values.get("llm_base_url") and env.get("OPENAI_API_KEY"):
        values["llm_base_url"] = "https://api.openai.com/v1"
        origins["llm_base_url"] = "OpenAI's URL (OPENAI_API_KEY is set, no base URL)"
    return Settings(**values), origins


def mask(name: str, value: Any) -> Any:
    """A setting's value as ``hoprag config`` shows it: secrets cut to their last 4 characters."""
    if name not in SECRETS or not value:
        return value
    text = str(value)
    return "****" + text[-4:] if len(text) >= 12 else "****"


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"setting {name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def _check_names(values: Mapping[str, Any], where: str = "settings") -> None:
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(known))}")


def _coerce(name: str, value: Any) -> Any:
    """Turn env/TOML strings into the field's type, with a message naming the field."""
    ftype = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if ftype == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if ftype == "int":
            return int(value)
        if ftype == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}={value!r} is not a valid {ftype}") from exc
