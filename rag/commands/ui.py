"""``hoprag ui``: the Streamlit UI (the packaged rag/webui script) on loopback."""

from __future__ import annotations

import subprocess
import sys

import typer

from rag.commands.common import app


@app.command()
def ui(port: int = typer.Option(8501, help="Port on 127.0.0.1.")) -> None:
    """Start the Streamlit UI on http://127.0.0.1:PORT."""
    from rag.extras import require

    require("streamlit", "ui")
    from rag.webui import SCRIPT

    raise typer.Exit(
        subprocess.call(
            [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        )
    )
