"""``hoprag config``: the effective settings and where each value came from (secrets masked)."""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import typer

from rag.commands.common import EXIT_OK, DataOpt, JsonOpt, KbOpt, app, run


@app.command("config")
def config(kb: Optional[str] = KbOpt, data_dir: Optional[str] = DataOpt, as_json: bool = JsonOpt) -> None:
    """Print every setting, its value and where it came from (flag, environment, .env, file or default)."""

    def body() -> int:
        from rag.config import config_files, load_with_origins, mask

        settings, origins = load_with_origins(kb=kb, data_dir=data_dir)
        rows = [
            {"name": f.name, "value": mask(f.name, getattr(settings, f.name)), "source": origins.get(f.name, "default")}
            for f in dataclasses.fields(settings)
        ]
        import os

        files = [str(p.resolve()) for p in config_files(os.environ)]
        if as_json:
            typer.echo(json.dumps({"settings": rows, "config_files": files}))
            return EXIT_OK
        typer.echo("config files read (later ones win): " + (", ".join(files) or "none"))
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            typer.echo(f"{r['name']:<{width}}  {json.dumps(r['value'])}  ({r['source']})")
        return EXIT_OK

    run(body)
