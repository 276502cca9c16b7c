"""``hoprag serve``: the OpenAI-compatible API (rag.server) under uvicorn."""

from __future__ import annotations

import ipaddress
from typing import Optional

import typer

from rag.commands import common
from rag.commands.common import EXIT_ERROR, EXIT_OK, DataOpt, KbOpt, app, load_settings, run


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", help="Require 'Authorization: Bearer KEY' (default: setting api_key / HOPRAG_API_KEY)."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", help="Another model id for the default knowledge base (every KB is also hoprag-KB)."
    ),
    max_upload_mb: Optional[float] = typer.Option(
        None, "--max-upload-mb", min=0.001, help="Largest upload request in MB (default: 4 files of max_file_mb)."
    ),
    preload: bool = typer.Option(False, "--preload", help="Load the embedder and LLM before accepting requests."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
) -> None:
    """Serve the HTTP API: OpenAI-compatible chat (every knowledge base is a model) and REST (docs at /docs).

    With --kb NAME only that knowledge base is served. Once users exist (hoprag users add), clients send a user's
    API key and see only the knowledge bases granted. A non-loopback --host needs a user (or the api_key setting).
    """

    def body() -> int:
        from rag.auth import Users
        from rag.errors import ConfigError
        from rag.extras import require

        uvicorn = require("uvicorn", "api")
        from rag.server import create_app

        settings = load_settings(kb, data_dir, api_key=api_key)
        if not _loopback(host) and not settings.api_key and not Users.of(settings).any():
            raise ConfigError(
                f"refusing to serve on {host}: no user is defined, so anyone reaching this port could read and change "
                "every knowledge base; add an admin first with  hoprag users add NAME --admin  (or bind 127.0.0.1)"
            )
        with common.open_rag(settings) as rag:
            if preload:
                rag.embedder, rag.engine  # noqa: B018 - loading is the point
            server_app = create_app(rag, model=model, only_kb=kb, max_upload_mb=max_upload_mb)
            what = f"knowledge base {settings.kb!r} as model 'hoprag-{settings.kb}'" if kb else (
                f"every knowledge base of {settings.data_dir} (models hoprag-KB)")
            typer.echo(f"serving {what} at http://{host}:{port}/v1 (API docs: http://{host}:{port}/docs)", err=True)
            config = uvicorn.Config(server_app, host=host, port=port, log_level="warning")
            server = uvicorn.Server(config)
            try:
                server.run()
            except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after shutting down cleanly
                return EXIT_OK
            except SystemExit as exc:  # uvicorn exits (code 3) when it cannot bind; keep hoprag's codes
                if exc.code in (0, None):
                    return EXIT_OK
                typer.echo(f"error: the server could not start on {host}:{port} (see the message above)", err=True)
                return EXIT_ERROR
            return EXIT_OK if server.started else EXIT_ERROR

    run(body)
