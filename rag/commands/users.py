"""``hoprag users``: users, roles, knowledge-base grants, passwords and API keys (issue 20).

Contract for scripts: ``hoprag users add NAME --role ROLE --json`` prints one
JSON object with ``user``, ``role`` and ``api_key`` (the key's only
appearance); ``hoprag users grant NAME KB`` grants a knowledge base. Every
command honours ``HOPRAG_DATA_DIR`` and ``--data-dir``; every change is in the
audit log (``hoprag audit``) with the OS user as actor.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from datetime import datetime
from typing import Optional

import typer

from rag.commands.common import EXIT_OK, EXIT_USAGE, DataOpt, JsonOpt, app, load_settings, run

users_app = typer.Typer(no_args_is_help=True, help="Users, roles, knowledge-base grants and API keys.")
app.add_typer(users_app, name="users")

PasswordStdinOpt = typer.Option(False, "--password-stdin", help="Read the password from the first line of stdin.")


def _users(data_dir: str | None):
    from rag.auth import Users

    return Users.of(load_settings(None, data_dir))


def _who() -> dict[str, str]:
    """Who makes a change from the command line, for the audit log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"actor": f"cli:{user}", "source": f"cli@{socket.gethostname()}"}


def _read_password(stdin: bool, confirm: bool = True) -> str:
    if stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            from rag.auth import AuthError

            raise AuthError("--password-stdin read no password: pipe it in, e.g.  printf '%s\\n' \"$PW\" | hoprag ...")
        return line
    return typer.prompt("Password", hide_input=True, confirmation_prompt=confirm, err=True)


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M") if epoch else "never"


def _warn_unknown_kb(data_dir: str | None, kb: str) -> None:
    from rag.errors import StoreError
    from rag.store import knowledge_base_names

    settings = load_settings(None, data_dir)
    try:
        known = knowledge_base_names(settings.index_dir, settings.chroma_url)
    except StoreError:  # the Chroma server is down: the note is only a hint, the grant still applies
        return
    if kb not in known:
        typer.echo(f"note: knowledge base {kb!r} does not exist yet in {settings.data_dir}; the grant applies once "
                   "it is created", err=True)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="User name (letters, digits, '.', '_', '-', '@')."),
    role: Optional[str] = typer.Option(None, "--role", help="admin, editor or reader."),
    admin: bool = typer.Option(False, "--admin", help="Same as --role admin (how the first admin is made)."),
    password: bool = typer.Option(False, "--password", help="Ask for a password (for the web UI sign-in)."),
    password_stdin: bool = PasswordStdinOpt,
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Add a user with a first API key, printed this once (only its hash is stored)."""

    def body() -> int:
        if admin and role not in (None, "admin"):
            typer.echo(f"error: --admin and --role {role} disagree: give one of them", err=True)
            return EXIT_USAGE
        chosen = "admin" if admin else role
        if chosen is None:
            typer.echo("error: give the user's role: --role admin|editor|reader (or --admin)", err=True)
            return EXIT_USAGE
        secret = _read_password(password_stdin) if (password or password_stdin) else None
        user, key = _users(data_dir).add(name, chosen, secret, **_who())
        if as_json:
            typer.echo(json.dumps({"user": user.name, "role": user.role, "api_key": key, "kbs": sorted(user.kbs),
                                   "password": secret is not None}))
        else:
            typer.echo(f"added user {user.name!r} ({user.role})")
            typer.echo(f"API key (shown this once, store it now): {key}")
            if user.role != "admin":
                typer.echo(f"grant knowledge bases with  hoprag users grant {user.name} KB", err=True)
            if secret is None:
                typer.echo(f"no password yet (web UI sign-in): set one with  hoprag users passwd {user.name}",
                           err=True)
        return EXIT_OK

    run(body)


@users_app.command("list")
def list_users(data_dir: Optional[str] = DataOpt, as_json: bool = JsonOpt) -> None:
    """List the users, their roles and grants."""

    def body() -> int:
        users = _users(data_dir)
        rows = []
        for u in users.list():
            active = [k for k in users.keys(u.name) if k.active]
            rows.append({**u.to_dict(), "password": users.has_password(u.name), "keys": len(active)})
        if as_json:
            typer.echo(json.dumps({"users": rows}))
        elif not rows:
            typer.echo("no users: hoprag is in single-user mode (add the first admin with  hoprag users add NAME "
                       "--admin)")
        else:
            for r in rows:
                kbs = "every knowledge base" if r["role"] == "admin" else (", ".join(r["kbs"]) or "no knowledge base")
                typer.echo(f"{r['user']:<20} {r['role']:<7} {kbs}  ({r['keys']} key(s), "
                           f"{'password set' if r['password'] else 'no password'})")
        return EXIT_OK

    run(body)


@users_app.command("grant")
def grant(
    name: str = typer.Argument(...), kb: str = typer.Argument(..., help="Knowledge base name."),
    data_dir: Optional[str] = DataOpt,
) -> None:
    """Let a user read (an editor: also change) a knowledge base."""

    def body() -> int:
        user = _users(data_dir).grant(name, kb, **_who())
        _warn_unknown_kb(data_dir, kb)
        typer.echo(f"{user.name} ({user.role}) may now use: {', '.join(sorted(user.kbs))}")
        return EXIT_OK

    run(body)


@users_app.command("revoke")
def revoke(
    name: str = typer.Argument(...), kb: str = typer.Argument(..., help="Knowledge base name."),
    data_dir: Optional[str] = DataOpt,
) -> None:
    """Take a knowledge base away from a user."""

    def body() -> int:
        user = _users(data_dir).revoke(name, kb, **_who())
        typer.echo(f"{user.name} ({user.role}) may now use: {', '.join(sorted(user.kbs)) or 'no knowledge base'}")
        return EXIT_OK

    run(body)


@users_app.command("role")
def set_role(
    name: str = typer.Argument(...), role: str = typer.Argument(..., help="admin, editor or reader."),
    data_dir: Optional[str] = DataOpt,
) -> None:
    """Change a user's role."""

    def body() -> int:
        user = _users(data_dir).set_role(name, role, **_who())
        typer.echo(f"{user.name} is now {user.role}")
        return EXIT_OK

    run(body)


@users_app.command("passwd")
def passwd(name: str = typer.Argument(...), password_stdin: bool = PasswordStdinOpt,
           data_dir: Optional[str] = DataOpt) -> None:
    """Set a user's password (asked twice, not echoed; or --password-stdin)."""

    def body() -> int:
        users = _users(data_dir)
        if users.get(name) is None:  # say so before asking for a password
            from rag.auth import AuthError

            raise AuthError(f"user {name!r} does not exist; list the users with  hoprag users list")
        users.set_password(name, _read_password(password_stdin), **_who())
        typer.echo(f"password of {name} set")
        return EXIT_OK

    run(body)


@users_app.command("keys")
def keys(
    name: str = typer.Argument(...),
    new: bool = typer.Option(False, "--new", help="Make a new API key (printed this once)."),
    label: str = typer.Option("", "--label", help="With --new: what the key is for."),
    revoke_id: Optional[str] = typer.Option(None, "--revoke", metavar="KEY_ID", help="Revoke this key now."),
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List a user's API keys (never the keys themselves), make a new one or revoke one."""

    def body() -> int:
        users = _users(data_dir)
        if new and revoke_id:
            typer.echo("error: give --new or --revoke, not both", err=True)
            return EXIT_USAGE
        out: dict = {"user": name}
        if new:
            key = users.new_key(name, label, **_who())
            out["api_key"] = key
            if not as_json:
                typer.echo(f"new API key for {name} (shown this once, store it now): {key}")
        elif revoke_id:
            users.revoke_key(name, revoke_id, **_who())
            out["revoked"] = revoke_id
            if not as_json:
                typer.echo(f"key {revoke_id} of {name} revoked")
        else:
            if users.get(name) is None:
                from rag.auth import AuthError

                raise AuthError(f"user {name!r} does not exist; list the users with  hoprag users list")
            listed = users.keys(name)
            out["keys"] = [k.to_dict() for k in listed]
            if not as_json:
                for k in listed:
                    state = "active" if k.active else f"revoked {_when(k.revoked)}"
                    typer.echo(f"{k.key_id}  {state:<24} created {_when(k.created)}  last used {_when(k.last_used)}"
                               f"  {k.label}")
        if as_json:
            typer.echo(json.dumps(out))
        return EXIT_OK

    run(body)


@users_app.command("remove")
def remove(name: str = typer.Argument(...), data_dir: Optional[str] = DataOpt) -> None:
    """Delete a user, their grants and keys (the last admin cannot be removed)."""

    def body() -> int:
        _users(data_dir).remove(name, **_who())
        typer.echo(f"user {name} removed")
        return EXIT_OK

    run(body)
