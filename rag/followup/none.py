"""``none``: follow-ups are retrieved as typed."""

from __future__ import annotations

from rag.followup.base import REWRITERS, FollowupContext, Rewrite, is_followup, unchanged


class NoRewrite:
    name = "none"

    def rewrite(self, ctx: FollowupContext) -> Rewrite:
        return unchanged(ctx, self.name, followup=is_followup(ctx.question, ctx.history))


@REWRITERS.register("none")
def _none(settings) -> NoRewrite:
    return NoRewrite()
