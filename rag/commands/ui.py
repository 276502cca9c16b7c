"""``hoprag ui``: the Streamlit UI (app.py) on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from rag.commands.common import app

APP_PY = Path(__file__).resolve().parents[2] / "app.py"


@app.command()
def ui(port: int = typer.Option(8501, help="Port on 127.0.0.1.")) -> None:
    """Start the Streamlit UI on http://127.0.0.1:PORT."""
    raise typer.Exit(
        subprocess.call(
            [sys.executable, "-m", "streamlit", "run", str(APP_PY), "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        )
    )
