"""The ``hoprag`` command line (typer): the apps of :mod:`rag.commands.common` with every command module's commands.

Each command lives in one module of :mod:`rag.commands`; they share the apps,
options and helpers of :mod:`rag.commands.common` and never import this module.
Exit codes: 0 success, 1 error, 2 usage error, 3 partial success (some inputs failed).
"""

from __future__ import annotations

import logging
import sys

import typer

from rag.commands import register_all
from rag.commands.common import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app, bench_app, eval_app, open_rag
from rag.errors import HopragError

register_all()

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "app", "bench_app", "eval_app", "main", "open_rag"]


def main() -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except HopragError as exc:  # raised while parsing settings
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
