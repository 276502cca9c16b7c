"""Every bad input of issue 18 in one batch: each gets a clear reason, the good files go in, nothing is half-written."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from ingest_files import TEXT, make_bomb_png, make_empty_rows_xlsx

from ingest.loaders import load
from ingest.pipeline import IngestOptions, Ingestor
from ingest.progress import TerminalProgress
from rag.config import Settings
from rag.errors import ConfigError, IngestError


@pytest.fixture
def silent_server():
    """A loopback port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_a_million_empty_rows_is_a_quick_clear_error():
    t0 = time.monotonic()
    with pytest.raises(IngestError, match="no text found in xlsx file"):
        load(make_empty_rows_xlsx(), "blank.xlsx")
    assert time.monotonic() - t0 < 30


def test_data_above_a_million_empty_rows_still_loads():
    loaded = load(make_empty_rows_xlsx(top=(("Herd", "Size"), ("Puno", "40"))), "herds.xlsx")
    assert loaded.pages[0].text == "| Herd | Size |\n|---|---|\n| Puno | 40 |"


def test_bad_inputs_in_one_batch(store, embedder, tmp_path, silent_server):
    files = {
        "empty.png": b"",
        "bomb.png": make_bomb_png(),
        "blank.xlsx": make_empty_rows_xlsx(),
        "good.txt": TEXT.encode(),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    options = IngestOptions(allow_private_urls=True, web_timeout_s=1.0, max_file_mb=5)
    report = Ingestor(store, embedder, options).ingest([*paths, silent_server])
    by_name = {f.source.rsplit("/", 1)[-1] or f.source: f for f in report.files}
    assert by_name["empty.png"].reason == "empty file"
    assert "decompression-bomb guard" in by_name["bomb.png"].reason
    assert "no text found in xlsx file" in by_name["blank.xlsx"].reason
    assert "(timeout)" in report.files[-1].reason
    assert by_name["good.txt"].status == "added"
    assert all("\n" not in f.reason for f in report.files)
    # Nothing half-written: the good file is the only document, pending or committed.
    assert [d.source.rsplit("/", 1)[-1] for d in store.documents(include_pending=True)] == ["good.txt"]


def test_progress_is_one_line_per_file_without_a_terminal():
    import io

    out = io.StringIO()
    progress = TerminalProgress(out, tty=False)
    for stage, frac in [("parse", 0.0), ("ocr", 0.1), ("ocr", 0.2), ("embed", 0.5), ("done", 1.0)]:
        progress("/docs/scan.pdf", stage, frac)
    progress("https://example.org/page", "fetch", 0.0)
    progress("https://example.org/page", "failed", 1.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("done   scan.pdf (") and lines[1].startswith("failed https://")


def test_progress_bars_on_a_terminal():
    import io

    out = io.StringIO()
    progress = TerminalProgress(out, tty=True)
    progress("/docs/scan.pdf", "ocr", 0.15)
    assert "scan.pdf" in out.getvalue() and "ocr" in out.getvalue()
    progress("/docs/scan.pdf", "done", 1.0)
    assert not progress.bars


def test_new_settings():
    assert Settings().ocr_languages == "eng" and Settings().allow_private_urls is False
    assert Settings.load(env={"HOPRAG_OCR_LANGUAGES": "eng+deu", "HOPRAG_ALLOW_PRIVATE_URLS": "1"}).allow_private_urls
    with pytest.raises(ConfigError, match="ocr_languages"):
        Settings(ocr_languages="eng; rm -rf /")
