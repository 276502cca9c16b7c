"""``hoprag ui``: the Streamlit UI (the packaged rag/webui script) on loopback."""

from __future__ import annotations

import signal
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
        run_child(
            [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        )
    )


def run_child(argv: list[str]) -> int:
    """Run ``argv`` to its end; a SIGTERM to this process (a supervisor, a test) stops the child too."""
    child = subprocess.Popen(argv)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.terminate())
    try:
        return child.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches the child too; wait for it to finish
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.terminate()
            child.wait()
