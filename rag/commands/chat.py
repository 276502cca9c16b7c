"""``hoprag chat``: an interactive prompt over a knowledge base; every finished answer is saved.

Lines typed (or piped on stdin) are questions, except the commands ``/sources``
(the last answer's sources with their evidence), ``/new`` (a new conversation)
and ``/quit``. A terminal prompt keeps its line history (readline).
"""

from __future__ import annotations

import sys
import uuid
from typing import Optional

import typer

from rag.errors import HopragError
from rag.commands import common
from rag.commands.common import EXIT_ERROR, EXIT_OK, DataOpt, KbOpt, app, load_settings, run

COMMANDS = "/sources (the last answer's sources), /new (a new conversation), /quit"


def _read(prompt: str, interactive: bool) -> str | None:
    """The next line (None at the end of input)."""
    if interactive:
        try:
            return input(prompt)
        except EOFError:
            return None
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else None


@app.command()
def chat(
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    conversation: Optional[str] = typer.Option(
        None, "--conversation", help="Continue this saved conversation (a new id starts one under that id)."),
    owner: str = typer.Option("local", "--owner", help="Whose conversation it is."),
    answer_mode: Optional[str] = typer.Option(None, "--answer-mode", help="extractive, generative or grounded."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Passages given to the LLM."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0, help="Answer length limit in tokens."),
) -> None:
    """Chat with a knowledge base: streamed answers with sources, saved as a conversation (/sources, /new, /quit)."""

    def body() -> int:
        from rag.answer import resolve_mode
        from rag.chats.export import citation_line, deleted_docs, source_lines
        from rag.types import Answer

        settings = load_settings(kb, data_dir, answer_mode=answer_mode, top_k=top_k, max_new_tokens=max_tokens)
        live = resolve_mode(settings) == "generative"  # the other modes check or quote before showing text
        interactive = sys.stdin.isatty()
        if interactive:
            import readline  # noqa: F401  (input() gets line editing and history)
        cid = conversation or uuid.uuid4().hex
        with common.open_rag(settings) as rag:
            chats = rag.conversations()
            last: Answer | None = None
            failed = False
            if conversation is not None and chats.store.info(cid) is not None:
                saved = chats.get(cid, owner)
                last = saved.turns[-1].answer if saved.turns else None
                typer.echo(f"Continuing {saved.title!r} ({len(saved.turns)} turns) in {settings.kb}.")
                if interactive:
                    for t in saved.turns:
                        readline.add_history(t.question)
            elif interactive:
                typer.echo(f"Knowledge base {settings.kb}; commands: {COMMANDS}.")
            while True:
                line = _read("> ", interactive)
                if line is None or line.strip() == "/quit":
                    break
                line = line.strip()
                if not line:
                    continue
                if line == "/new":
                    cid, last = uuid.uuid4().hex, None
                    typer.echo(f"New conversation {cid}.")
                elif line == "/sources":
                    if last is None or not last.citations:
                        typer.echo("No sources yet: ask a question first." if last is None else "No passage cited.")
                    else:
                        for text in source_lines(last, deleted_docs(last.citations, rag.documents())):
                            typer.echo(text)
                elif line.startswith("/"):
                    typer.echo(f"Unknown command {line.split()[0]}; commands: {COMMANDS}.")
                else:
                    answer = None
                    try:
                        for item in rag.stream(line, conversation=cid, owner=owner):
                            if isinstance(item, Answer):
                                answer = item
                            elif live:
                                typer.echo(item, nl=False)
                    except KeyboardInterrupt:
                        typer.echo("\n(stopped; this answer is not saved)")
                        continue
                    except HopragError as exc:
                        typer.echo(f"error: {exc}", err=True)
                        failed = True
                        continue
                    assert answer is not None
                    if not live and answer.text:
                        typer.echo(answer.text, nl=False)
                    if answer.error:
                        typer.echo(f"\nwarning: {answer.error}", err=True)
                    typer.echo("")
                    for c in answer.citations:
                        typer.echo(citation_line(c))
                    last = answer
            if chats.store.info(cid) is not None:
                typer.echo(f"Saved as conversation {cid}: hoprag conversations show {cid}", err=True)
        return EXIT_ERROR if failed else EXIT_OK

    run(body)
