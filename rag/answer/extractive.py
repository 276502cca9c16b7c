"""``extractive``: no LLM. The answer is the best evidence sentences, quoted and cited."""

from __future__ import annotations

from typing import Iterator

from rag.answer.base import MODES, AnswerJob, Draft, abstain_draft, abstains, quote


@MODES.register("extractive")
class Extractive:
    name = "extractive"
    uses_llm = False

    def stream(self, job: AnswerJob) -> Iterator[str | Draft]:
        why = abstains(job)
        draft = abstain_draft(why) if why else quote(job)
        if draft.text:
            yield draft.text
        yield draft
