"""``hoprag ask``: answer a question with cited passages and their evidence sentences."""

from __future__ import annotations

import json
from typing import Optional

import typer

from rag.chats.export import source_lines
from rag.commands import common
from rag.commands.common import EXIT_OK, DataOpt, JsonOpt, KbOpt, app, load_settings, run


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Passages given to the LLM."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Retrieval strategy."),
    answer_mode: Optional[str] = typer.Option(
        None, "--answer-mode", help="extractive (no LLM, quotes the evidence), generative or grounded (checked)."
    ),
    max_tokens: Optional[int] = typer.Option(
        None, "--max-tokens", min=0, help="Answer length limit in tokens (0: the engine's default)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Answer a question with cited passages and the evidence sentences behind them."""

    def body() -> int:
        from rag.answer import resolve_mode
        from rag.types import Answer

        settings = load_settings(kb, data_dir, top_k=top_k, strategy=strategy, answer_mode=answer_mode,
                                 max_new_tokens=max_tokens)
        # Only a generative answer is final as it streams; the others are checked or quoted first.
        live = not as_json and resolve_mode(settings) == "generative"
        with common.open_rag(settings) as rag:
            answer = None
            for item in rag.stream(question):
                if isinstance(item, Answer):
                    answer = item
                elif live:
                    typer.echo(item, nl=False)
        assert answer is not None
        if as_json:
            typer.echo(json.dumps(answer.to_dict()))
            return EXIT_OK
        if not live and answer.text:
            typer.echo(answer.text, nl=False)
        if answer.error:
            typer.echo(f"warning: {answer.error}\nSources found (no generated answer):", err=True)
        elif not answer.text.strip():
            typer.echo("(the model gave no answer)")
        typer.echo("")
        for line in source_lines(answer):
            typer.echo(line)
        return EXIT_OK

    run(body)
