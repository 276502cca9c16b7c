"""``hoprag --version``: the installed version, from the package metadata."""

from __future__ import annotations

from typing import Optional

import typer

from rag.commands.common import app


def installed_version() -> str:
    """The version of the installed ``hoprag`` distribution (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hoprag")
    except PackageNotFoundError:
        from rag import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hoprag {installed_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print hoprag's version and exit."
    ),
) -> None:
    """hoprag: chat with your documents, offline."""
