"""``hoprag audit``: read the audit log (who ingested, deleted, granted and signed in, when, from where)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from rag.commands.common import EXIT_OK, DataOpt, JsonOpt, app, load_settings, run

_FIXED = ("time", "actor", "action", "target", "source")


@app.command("audit")
def audit(
    since: Optional[str] = typer.Option(
        None, "--since", help="From this time: ISO date/time or a span back from now (30m, 24h, 7d)."
    ),
    user: Optional[str] = typer.Option(None, "--user", help="Only what this user (actor) did."),
    action: Optional[str] = typer.Option(None, "--action", help="Only this action (sign_in, ingest, grant, ...)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the last N records."),
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Print the audit log, oldest first."""

    def body() -> int:
        from rag.auth import Audit
        from rag.errors import ConfigError

        log = Audit(load_settings(None, data_dir).data_dir)
        try:
            records = log.read(since=since, actor=user, action=action, limit=limit)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if as_json:
            typer.echo(json.dumps({"records": records}, ensure_ascii=False))
            return EXIT_OK
        for r in records:
            extra = " ".join(f"{k}={v}" for k, v in r.items() if k not in _FIXED)
            typer.echo(f"{r.get('time', '')}  {r.get('actor') or '-'}  {r.get('action', '')}  "
                       f"{r.get('target') or '-'}  from {r.get('source') or '-'}  {extra}".rstrip())
        return EXIT_OK

    run(body)
