"""The rewriters are registered components behind the ``followup_rewrite`` setting."""

from __future__ import annotations

import pytest

from rag import components
from rag.config import Settings
from rag.errors import ConfigError
from rag.followup import REWRITERS, FollowupContext, resolve_mode, rewrite


def test_the_setting_takes_auto_and_the_registered_rewriters():
    assert REWRITERS.names() == ("entities", "llm", "none")
    assert components.choices("followup_rewrite") == ("auto", "entities", "llm", "none")
    assert Settings().followup_rewrite == "auto"
    assert Settings.load(env={"HOPRAG_FOLLOWUP_REWRITE": "entities"}).followup_rewrite == "entities"
    with pytest.raises(ConfigError, match="followup_rewrite='magic' is not allowed; choose one of: auto, entities"):
        Settings(followup_rewrite="magic")


def test_auto_is_entities_until_an_llm_rewriter_measures_better():
    assert resolve_mode("auto") == "entities"
    assert resolve_mode("llm") == "llm" and resolve_mode("none") == "none"


def test_rewrite_without_history_never_builds_a_rewriter_and_is_timed():
    ctx = FollowupContext("Where was he born?", ())
    result = rewrite("llm", ctx, Settings())
    assert result.query == "Where was he born?" and result.mode == "llm" and result.seconds >= 0
    none = rewrite("none", FollowupContext("Where was he born?", [("Who?", "Bram Stoker")]), Settings())
    assert none.query == "Where was he born?" and none.followup
