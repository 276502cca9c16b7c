"""Encrypted PDFs: the right password opens them, a wrong one is a clear per-file error, none is ever kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from ingest_files import PAGES, PDF_PASSWORD, make_encrypted_pdf, make_pdf
from typer.testing import CliRunner

from ingest.loaders import LoadOptions, load, needs_password
from ingest.parse import ParseJob
from ingest.pipeline import IngestOptions
from rag import cli
from rag.errors import IngestError
from rag.ui_support import password_failed, upload_needs_password

SECRET = PDF_PASSWORD  # make_encrypted_pdf's user password


@pytest.fixture(scope="module")
def locked(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("locked") / "locked.pdf"
    path.write_bytes(make_encrypted_pdf(make_pdf(PAGES)))
    return path


def test_loader_right_wrong_and_no_password(locked):
    data = locked.read_bytes()
    assert "Rosa Quispe" in load(data, "locked.pdf", LoadOptions(password=SECRET)).pages[2].text
    with pytest.raises(IngestError) as wrong:
        load(data, "locked.pdf", LoadOptions(password="hunter2"))
    assert str(wrong.value) == "encrypted PDF: wrong password" and wrong.value.__cause__ is None
    with pytest.raises(IngestError, match="encrypted PDF: password needed; give it with 'hoprag ingest --password'"):
        load(data, "locked.pdf")


def test_the_ui_knows_when_to_ask(locked):
    assert needs_password(locked.read_bytes()) and upload_needs_password(locked.read_bytes())
    assert not needs_password(make_pdf(PAGES)) and not needs_password(b"plain text")


def test_api_password_and_it_is_never_kept(make_rag, locked, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rag = make_rag()
    wrong = rag.ingest([locked, ("plain.txt", b"Vicunas live wild above 3500 metres.")], password="hunter2")
    assert [f.status for f in wrong.files] == ["failed", "added"]
    assert wrong.files[0].reason == "encrypted PDF: wrong password" and password_failed(wrong.files[0])
    right = rag.ingest([locked], password=SECRET)
    assert right.files[0].status == "added" and right.files[0].pages == 3
    assert rag.retrieve("Who built the loom in Cusco?", k=1)[0].chunk.page == 3
    # Not in any repr, log record or file hoprag wrote.
    assert SECRET not in repr(IngestOptions(password=SECRET)) and SECRET not in repr(ParseJob("x", password=SECRET))
    assert "hunter2" not in caplog.text and SECRET not in caplog.text
    for path in Path(rag.settings.data_dir).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert SECRET.encode() not in blob and b"hunter2" not in blob, path


def test_cli_prompts_for_the_password_without_echo(cli_rag, locked):
    runner = CliRunner()
    args = ["ingest", str(locked), "--password", "--data-dir", cli_rag.data_dir]
    wrong = runner.invoke(cli.app, args, input="hunter2\n")
    assert wrong.exit_code == cli.EXIT_ERROR and "encrypted PDF: wrong password" in wrong.output
    assert "hunter2" not in wrong.output  # hide_input: the prompt does not echo
    right = runner.invoke(cli.app, args, input=f"{SECRET}\n")
    assert right.exit_code == 0, right.output
    assert "added" in right.output and "3 pages" in right.output and SECRET not in right.output
