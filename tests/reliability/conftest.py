"""Fixtures of the reliability tests: a fake engine for units, real loopback servers for faults."""

from __future__ import annotations

import pytest
from rel_helpers import FakeEngine, FaultyLLM


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def faulty_llm():
    servers: list[FaultyLLM] = []

    def start(mode: str, delay_s: float = 5.0) -> FaultyLLM:
        srv = FaultyLLM(mode, delay_s)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.close()
