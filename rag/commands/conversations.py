"""``hoprag conversations list|show|export|delete|import``: the saved conversations of a data dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag.commands import common
from rag.commands.common import EXIT_OK, DataOpt, JsonOpt, app, load_settings, run
from rag.ui_support import format_added, plural

conversations_app = typer.Typer(no_args_is_help=True, help="Saved conversations: list, show, export, delete, import.")
app.add_typer(conversations_app, name="conversations")

IdArg = typer.Argument(..., help="The conversation id (see hoprag conversations list).")
KbFilter = typer.Option(None, "--kb", help="Only this knowledge base (default: all).")
OwnerOpt = typer.Option(None, "--owner", help="Only this owner's conversations (default: anyone's).")


def _chats(data_dir: str | None, kb: str | None = None):
    return common.open_rag(load_settings(kb, data_dir))


@conversations_app.command("list")
def list_(
    kb: Optional[str] = KbFilter,
    data_dir: Optional[str] = DataOpt,
    owner: Optional[str] = OwnerOpt,
    search: str = typer.Option("", "--search", help="Only titles containing this text."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many (most recent first)."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most this many."),
    as_json: bool = JsonOpt,
) -> None:
    """Saved conversations, most recently updated first."""

    def body() -> int:
        from rag.chats import ALL

        with _chats(data_dir, kb) as rag:
            items = rag.conversations().list(owner, search, offset, limit, kb=kb or ALL)
        if as_json:
            typer.echo(json.dumps({"conversations": [c.to_dict() for c in items]}))
            return EXIT_OK
        if not items:
            typer.echo("No saved conversations.")
        for c in items:
            typer.echo(f"{c.id}  {format_added(c.updated)}  {c.kb}  {c.owner}  {plural(c.turns, 'turn'):>9}  {c.title}")
        return EXIT_OK

    run(body)


@conversations_app.command()
def show(conversation_id: str = IdArg, data_dir: Optional[str] = DataOpt, as_json: bool = JsonOpt) -> None:
    """One conversation: each question, its answer and its sources (a deleted document's are marked)."""

    def body() -> int:
        from rag.chats.export import citation_line

        with _chats(data_dir) as rag:
            chats = rag.conversations()
            if as_json:
                typer.echo(chats.export(conversation_id, "json"))
                return EXIT_OK
            conv = chats.get(conversation_id)
        info = conv.info
        typer.echo(f"{info.title}\n{info.kb} · {info.owner} · {plural(len(conv.turns), 'turn')} · "
                   f"updated {format_added(info.updated)}")
        for t in conv.turns:
            typer.echo(f"\n> {t.question}\n{t.answer.text.strip() or '(no answer text)'}")
            if t.answer.error:
                typer.echo(f"(no generated answer: {t.answer.error})")
            for c in t.answer.citations:
                typer.echo(f"  {citation_line(c, conv.deleted)}")
        return EXIT_OK

    run(body)


@conversations_app.command()
def export(
    conversation_id: str = IdArg,
    data_dir: Optional[str] = DataOpt,
    format: str = typer.Option("markdown", "--format", help="markdown or json (json can be imported back)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file (default: stdout)."),
) -> None:
    """A conversation as Markdown or JSON."""

    def body() -> int:
        with _chats(data_dir) as rag:
            text = rag.conversations().export(conversation_id, format)
        if output is None:
            typer.echo(text, nl=not text.endswith("\n"))
        else:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"Wrote {output}", err=True)
        return EXIT_OK

    run(body)


@conversations_app.command()
def delete(conversation_id: str = IdArg, data_dir: Optional[str] = DataOpt, as_json: bool = JsonOpt) -> None:
    """Delete a conversation and all its turns."""

    def body() -> int:
        with _chats(data_dir) as rag:
            rag.conversations().delete(conversation_id)
        typer.echo(json.dumps({"deleted": conversation_id}) if as_json else f"Deleted {conversation_id}.")
        return EXIT_OK

    run(body)


@conversations_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="A JSON export (hoprag conversations export ID --format json)."),
    data_dir: Optional[str] = DataOpt,
    new_id: bool = typer.Option(False, "--new-id", help="Import under a fresh id (keep an existing one)."),
    as_json: bool = JsonOpt,
) -> None:
    """Add a conversation from its JSON export."""

    def body() -> int:
        from rag.errors import ConfigError

        try:
            data = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}; give the path of a JSON export") from None
        with _chats(data_dir) as rag:
            cid = rag.conversations().import_json(data, new_id=new_id)
        typer.echo(json.dumps({"imported": cid}) if as_json else f"Imported as conversation {cid}.")
        return EXIT_OK

    run(body)
