"""The engine interface and what all engines share (stop handling)."""

from __future__ import annotations

from typing import Iterable, Iterator, Protocol, Sequence

from rag.registry import Registry
from rag.types import Usage

# What an engine can serve; rerankers and features declare what they need.
TEXT = "text"
LOGPROBS = "logprobs"
ATTENTION = "attention"
KV_CACHE = "kv_cache"


class Engine(Protocol):
    """Generates text for a prompt.

    ``stream`` yields text pieces as they are decoded and, last, one
    :class:`~rag.types.Usage`. ``session`` lets an engine keep one conversation
    on one cache slot.
    """

    name: str
    capabilities: frozenset[str]

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        session: str | None = None,
    ) -> Iterator[str | Usage]: ...

    def close(self) -> None: ...


ENGINES: Registry[Engine] = Registry("engine")


def generate(engine: Engine, prompt: str, **kwargs) -> tuple[str, Usage]:
    """Run ``engine.stream`` to the end → (text, usage)."""
    parts: list[str] = []
    usage = Usage()
    for item in engine.stream(prompt, **kwargs):
        if isinstance(item, Usage):
            usage = item
        else:
            parts.append(item)
    return "".join(parts), usage


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
