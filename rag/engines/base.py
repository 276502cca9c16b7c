"""The engine contract: what every engine does (:class:`Streams`) and the capabilities some add.

Capabilities are small runtime-checkable Protocols; a component that needs one
checks ``isinstance(engine, ScoresNextTokens)`` and, to say which engines could
serve it, asks :func:`engines_with`, which reads the engine class each registry
entry declares (nothing heavy is imported). A new engine is one file with a
registered factory; nothing in ``rag/rerank`` names it.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Protocol, Sequence, TypeVar, runtime_checkable

from rag.registry import Registry
from rag.types import ChatPrompt, Prompt, Usage

# What ``stream`` takes: a completion prompt (text, with or without KV-cache
# boundaries) or chat messages (engines with ``takes_messages``).
PromptLike = str | Prompt | ChatPrompt


@runtime_checkable
class Streams(Protocol):
    """Generates text for a prompt; every engine is one.

    ``stream`` yields text pieces as they are decoded and, last, one
    :class:`~rag.types.Usage`. ``session`` lets an engine keep one conversation
    on one cache slot. ``takes_messages`` says which prompt form suits the model
    behind it: chat messages (:class:`~rag.types.ChatPrompt`, a chat server) or a
    raw completion (:class:`~rag.types.Prompt`, a base model or a completions
    endpoint). ``default_max_tokens`` is its answer length when the setting
    ``max_new_tokens`` is 0.
    """

    name: str
    takes_messages: bool
    default_max_tokens: int

    def stream(
        self,
        prompt: PromptLike,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        session: str | None = None,
    ) -> Iterator[str | Usage]: ...

    def close(self) -> None: ...


# The name the rest of the code uses for "an engine".
Engine = Streams


@runtime_checkable
class ScoresNextTokens(Protocol):
    """Log-probabilities of candidate next tokens (pointwise and FIRST rerankers, yes/no scorers)."""

    def next_token_logprobs_batch(self, prompts: Sequence[str], candidates: Sequence[str]) -> list[dict[str, float]]:
        """Per prompt: candidate → log-probability of being the next token (a candidate counts with
        and without a leading space; only its first token is read)."""
        ...


@runtime_checkable
class ExposesAttention(Protocol):
    """Attention the model pays from a query to earlier text (ICR reranking, the LLM sentence locator)."""

    def attention_scores(
        self,
        segments: Sequence[str],
        query: str,
        tail: str = "",
        *,
        layers: str = "global@6",
        calibrate: bool = True,
        score_segments: Sequence[int] | None = None,
        trace: dict | None = None,
    ) -> list[float]:
        """Per segment, the attention mass ``query``'s tokens pay to it.

        The segments run first (the first one with BOS, each tokenized alone so
        its token span is exact), then ``query`` + ``tail``. Attention from the
        query tokens is averaged over them and summed over heads and the layers
        ``layers`` selects (see :data:`rag.config.ICR_LAYERS_FORMAT`); with
        ``calibrate`` the attention of the content-free query "N/A" is
        subtracted; tokens below mean − 2·std over the tokens of
        ``score_segments`` (default: all) count zero. ``trace``, when given, is
        filled with what ran (token counts, layers, seconds).
        """
        ...


ENGINES: Registry[Streams] = Registry("engine", package="rag.engines")

C = TypeVar("C")


def provides(engine_class: type) -> Callable[[C], C]:
    """Mark a registered engine factory with the class it builds, so capabilities can be read without building it.

    >>> @ENGINES.register("mine")      # doctest: +SKIP
    ... @provides(MyEngine)
    ... def _make(settings): return MyEngine(...)
    """

    def deco(factory: C) -> C:
        factory.engine_class = engine_class  # type: ignore[attr-defined]
        return factory

    return deco


def load_engines() -> None:
    """Import the engine modules so they register (cheap: heavy imports happen when an engine is built)."""
    ENGINES.load()


def _members(capability: type) -> set[str]:
    """The attributes and methods a Protocol declares (its own and its protocol bases')."""
    names: set[str] = set()
    for klass in capability.__mro__:
        if klass is Protocol or Protocol not in klass.__bases__:  # the capability and its protocol bases
            continue
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {n for n, v in vars(klass).items() if callable(v) and not n.startswith("_")}
    return names


def has_capability(engine_class: type, capability: type) -> bool:
    """Whether instances of ``engine_class`` satisfy the Protocol ``capability`` (checked on the class)."""
    return all(hasattr(engine_class, m) for m in _members(capability))


def engines_with(capability: type) -> tuple[str, ...]:
    """Names of the registered engines whose declared class provides ``capability``."""
    load_engines()
    able = []
    for name in ENGINES.names():
        cls = getattr(ENGINES.get(name), "engine_class", None)
        if cls is not None and has_capability(cls, capability):
            able.append(name)
    return tuple(able)


# How error messages name the capabilities.
CAPABILITY_NAMES: dict[type, str] = {Streams: "text", ScoresNextTokens: "logprobs", ExposesAttention: "attention"}


def engine_name(engine: object) -> str:
    return engine.name if isinstance(engine, Streams) else type(engine).__name__


def generate(engine: Streams, prompt: PromptLike, **kwargs) -> tuple[str, Usage]:
    """Run ``engine.stream`` to the end → (text, usage)."""
    parts: list[str] = []
    usage = Usage()
    for item in engine.stream(prompt, **kwargs):
        if isinstance(item, Usage):
            usage = item
        else:
            parts.append(item)
    return "".join(parts), usage


def effective_max_tokens(engine: Streams, max_new_tokens: int) -> int:
    """The answer length limit: the setting, or the engine's default when it is 0."""
    return max_new_tokens if max_new_tokens > 0 else engine.default_max_tokens


def completion_text(prompt: PromptLike, engine: str) -> str:
    """The text of a completion prompt; chat messages are refused (a completion model has no roles)."""
    if isinstance(prompt, ChatPrompt):
        raise TypeError(f"engine {engine!r} takes completion prompts, not chat messages (its takes_messages is False)")
    return prompt.text if isinstance(prompt, Prompt) else prompt


def match_candidates(top: dict[str, float], candidates: Sequence[str]) -> dict[str, float]:
    """Candidate log-probabilities from a server's top-logprobs list.

    Tokens are matched with their surrounding spaces stripped ("yes" and " yes"
    both count, summed). A candidate outside the list gets a value one nat
    below the lowest listed one: its true value is lower than every listed
    token, and this keeps it comparable instead of -inf.
    """
    import math

    floor = min(top.values()) - 1.0
    out: dict[str, float] = {}
    for cand in candidates:
        hits = [lp for tok, lp in top.items() if tok.strip() == cand.strip()]
        if not hits:
            out[cand] = floor
        else:
            peak = max(hits)
            out[cand] = peak + math.log(sum(math.exp(lp - peak) for lp in hits))
    return out


def apply_stops(pieces: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """Re-chunk a text stream so it ends right before the first stop string.

    Text that could be the start of a stop string is held back until it is
    known not to be one, so a stop string is never half-emitted.
    """
    stop = [s for s in stop if s]
    if not stop:
        yield from pieces
        return
    buf = ""
    for piece in pieces:
        buf += piece
        cut = min((i for i in (buf.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            if buf[:cut]:
                yield buf[:cut]
            return
        hold = 0
        for s in stop:
            for n in range(min(len(s) - 1, len(buf)), 0, -1):
                if buf.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        if len(buf) > hold:
            yield buf[: len(buf) - hold]
            buf = buf[len(buf) - hold :]
    if buf:
        yield buf
