"""Progress of an ingest run for a terminal: bars on a TTY, one line per file otherwise (logs, pipes)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, TextIO


def _label(source: str) -> str:
    return (Path(source).name or source)[:30] if "://" not in source else source[:40]


class TerminalProgress:
    """A ``progress(source, stage, fraction)`` callback for :meth:`rag.RAG.ingest`."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.bars: dict = {}
        self.started: dict[str, float] = {}

    def __call__(self, source: str, stage: str, frac: float) -> None:
        if self.tty:
            self._bar(source, stage, frac)
        elif stage in ("done", "failed"):
            seconds = time.monotonic() - self.started.pop(source, time.monotonic())
            self.stream.write(f"{stage:6} {_label(source)} ({seconds:.1f} s)\n")
            self.stream.flush()
        else:
            self.started.setdefault(source, time.monotonic())

    def _bar(self, source: str, stage: str, frac: float) -> None:
        from tqdm import tqdm

        bar = self.bars.get(source)
        if bar is None:
            bar = self.bars[source] = tqdm(total=100, desc=_label(source), unit="%", leave=False, file=self.stream)
        bar.set_postfix_str(stage)
        bar.update(max(0, int(frac * 100) - bar.n))
        if stage in ("done", "failed"):
            bar.close()
            del self.bars[source]


def terminal_progress(quiet: bool = False) -> Callable[[str, str, float], None]:
    """The CLI's progress callback (nothing at all when ``quiet``, e.g. with --json)."""
    return (lambda *_: None) if quiet else TerminalProgress()
