"""The audit log (rag.auth.Audit): append-only JSON lines, filters, torn last line, concurrent appends."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from rag.auth import Audit
from rag.auth.audit import parse_since


def test_records_are_read_back_filtered_and_limited(tmp_path):
    log = Audit(tmp_path)
    log.record("ann", "ingest", "alpha", "10.0.0.1", sources=["a.pdf"])
    log.record("bob", "grant", "ann", "cli@host", kb="alpha")
    log.record("ann", "document_delete", "alpha", "10.0.0.1", doc_id="abc")
    everything = log.read()
    assert [r["action"] for r in everything] == ["ingest", "grant", "document_delete"]
    assert everything[0]["sources"] == ["a.pdf"] and everything[0]["source"] == "10.0.0.1"
    assert datetime.fromisoformat(everything[0]["time"].replace("Z", "+00:00")).tzinfo is not None
    assert [r["action"] for r in log.read(actor="ann")] == ["ingest", "document_delete"]
    assert [r["target"] for r in log.read(action="grant")] == ["ann"]
    assert [r["action"] for r in log.read(limit=1)] == ["document_delete"]
    assert log.read(since="1h") == everything
    assert log.read(since=datetime.now(timezone.utc) + timedelta(minutes=1)) == []
    assert Audit(tmp_path / "nowhere").read() == []


def test_a_torn_last_line_is_skipped_and_appends_go_on(tmp_path):
    log = Audit(tmp_path)
    log.record("ann", "sign_in")
    with open(log.path, "ab") as f:
        f.write(b'{"time": "2026-')  # a crash in the middle of an append
    assert [r["action"] for r in log.read()] == ["sign_in"]


def test_concurrent_appends_each_land_whole(tmp_path):
    log = Audit(tmp_path)

    def write(n: int) -> None:
        for i in range(50):
            log.record(f"user{n}", "ingest", "kb", "", note="x" * 3000, i=i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = log.path.read_bytes().splitlines()
    assert len(lines) == 200 and all(json.loads(line)["note"] == "x" * 3000 for line in lines)


def test_since_takes_dates_spans_and_refuses_nonsense():
    assert parse_since("2026-11-29") == datetime(2026, 11, 29, tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - parse_since("24h")) - timedelta(hours=24)) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="30m, 24h, 7d"):
        parse_since("yesterday")
