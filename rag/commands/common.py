"""What every ``hoprag`` command shares: the Typer apps, common options, exit codes and helpers.

Command modules import from here, never from :mod:`rag.cli` (which only puts
the apps together), so no command module depends on another one or on the
entry point. Exit codes: 0 success, 1 error, 2 usage error, 3 partial success
(some inputs failed).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import typer

from rag.config import Settings
from rag.errors import ConfigError, HopragError

# add_completion: `hoprag --install-completion` (bash, zsh, fish, PowerShell) completes commands and options.
app = typer.Typer(add_completion=True, no_args_is_help=True, help="hoprag: chat with your documents, offline.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval, reranking and answers on a dataset.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

KbOpt = typer.Option(None, "--kb", help="Knowledge base name (default: settings kb).")
DataOpt = typer.Option(None, "--data-dir", help="Data directory (default: settings data_dir).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object.")


def load_settings(kb: str | None, data_dir: str | None, **extra: Any) -> Settings:
    """The settings of a command: ``hoprag.toml`` and ``HOPRAG_*``, then the command's flags (``None``: unset)."""
    return Settings.load(kb=kb, data_dir=data_dir, **extra)


def run(fn: Callable[[], int | None]) -> None:
    """Run a command body; a HopragError becomes one line on stderr and exit code 1."""
    try:
        code = fn() or EXIT_OK
    except HopragError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    raise typer.Exit(code)


def open_rag(settings: Settings):
    """Open the knowledge base of ``settings``.

    Commands call it as ``common.open_rag``, so a test that replaces it
    (``monkeypatch.setattr(common, "open_rag", ...)``) replaces it for all of them.
    """
    from rag.pipeline import RAG

    return RAG(settings)


def split_names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    """A comma-separated list of names, each checked against ``allowed``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ConfigError(f"{what} {text!r} is not allowed; choose from: {', '.join(allowed)} (comma-separated)")
    return list(dict.fromkeys(names))


def split_ks(text: str) -> list[int]:
    """``--k`` values: comma-separated whole numbers of at least 1, sorted, without repeats."""
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as exc:
        raise ConfigError(f"--k {text!r} must be comma-separated whole numbers, e.g. 2,5,10") from exc
    if not ks or ks[0] < 1:
        raise ConfigError(f"--k {text!r} must list whole numbers of at least 1, e.g. 2,5,10")
    return ks


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A tqdm bar on stderr per named run: ``progress(name, done, total)``."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(total=total, desc=name, unit="q", file=sys.stderr, leave=False, disable=None)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()
