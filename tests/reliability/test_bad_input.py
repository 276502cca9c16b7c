"""Bad input: empty and huge uploads, huge and empty questions, odd encodings, zip bombs, hostile names."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.pipeline import MAX_QUESTION_CHARS
from rel_helpers import DOCS


def _one(rag, name: str, data: bytes):
    report = rag.ingest([(name, data)])
    assert len(report.files) == 1
    return report.files[0]


def test_zero_byte_upload_is_refused_with_a_reason(make_rag):
    rag = make_rag()
    result = _one(rag, "empty.txt", b"")
    assert result.status == "failed" and "empty" in result.reason
    assert rag.documents() == []


def test_200_mb_upload_is_refused_by_the_size_limit(make_rag):
    rag = make_rag()
    data = b"a" * (200 * 2**20)
    result = _one(rag, "huge.txt", data)
    del data
    assert result.status == "failed"
    assert re.search(r"200(\.0)? MB", result.reason) and "50 MB limit" in result.reason, result.reason
    assert rag.documents() == []


def test_question_limits(make_rag, fake_engine):
    rag = make_rag(engine=fake_engine)
    assert rag.ingest([(n, t.encode()) for n, t in DOCS.items()]).ok
    with pytest.raises(ConfigError, match=f"100000 characters; the limit is {MAX_QUESTION_CHARS}"):
        rag.ask("why? " * 20000)
    with pytest.raises(ConfigError, match="100000 characters"):
        rag.retrieve("x" * 100_000)
    for empty in ("", "   \n\t "):
        with pytest.raises(ConfigError, match="empty"):
            rag.ask(empty)
    assert fake_engine.prompts == []  # nothing reached the engine
    assert rag.ask("Where is the Eiffel Tower?").text  # the KB still works afterwards


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-16-le", "cp1252"])
def test_non_utf8_text_files_are_decoded(make_rag, encoding):
    rag = make_rag()
    text = "Le café crème coûte très cher à Zürich, señor. Ça alors, déjà fermé!\n" * 3
    result = _one(rag, f"notes-{encoding}.txt", text.encode(encoding))
    assert result.status == "added", result.reason
    chunk_text = " ".join(c.text for c in rag.store.chunks(result.doc_id))
    assert "Zürich" in chunk_text and "café crème" in chunk_text


def _zip_bomb_docx(expanded_mb: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with zf.open("word/document.xml", "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0"?><w:document><w:body>')
            block = b" " * 2**20
            for _ in range(expanded_mb):
                fh.write(block)
            fh.write(b"</w:body></w:document>")
    return buf.getvalue()


def test_zip_bomb_like_docx_is_refused_without_expanding(make_rag):
    rag = make_rag()
    data = _zip_bomb_docx(260)
    assert len(data) < 2 * 2**20  # a small upload that would expand to 260 MB
    result = _one(rag, "bomb.docx", data)
    assert result.status == "failed" and "zip bomb" in result.reason
    assert rag.documents() == []


HOSTILE = [
    "../../escape.txt",
    "../" * 12 + "tmp/escape-abs.txt",
    "/etc/passwd",
    "C:\\Windows\\system32\\evil.txt",
    "..\\..\\win-escape.txt",
    "evil\x00.txt",
    "line\nbreak.txt",
    "..",
    "",
]


def test_hostile_upload_names_never_become_paths(make_rag, tmp_path, monkeypatch):
    """RAG.ingest((name, bytes)) treats the name as a label: nothing is written under it."""
    sandbox = tmp_path / "sandbox" / "a" / "b"
    sandbox.mkdir(parents=True)
    monkeypatch.chdir(sandbox)
    before = {p for p in tmp_path.rglob("*")}
    rag = make_rag()
    names = [n for n in HOSTILE if n] + [str(tmp_path / "abs-target.txt")]
    body = b"The secret ingredient of the soup is basil and lemon zest.\n"
    report = rag.ingest([(n, body + n.encode("utf-8", "replace")) for n in names])
    assert not report.failed or all(f.reason for f in report.failed)
    data_dir = Path(rag.settings.data_dir).resolve()
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if data_dir not in p.resolve().parents and p.resolve() != data_dir]
    assert outside == [], f"files written outside the data dir: {outside}"
    assert not (tmp_path / "abs-target.txt").exists() and not (tmp_path / "sandbox" / "escape.txt").exists()
    assert not os.path.exists("/tmp/escape-abs.txt")
    # Whatever was stored is retrievable as text.
    assert any("basil" in h.chunk.text for h in rag.retrieve("secret ingredient of the soup", k=3))


def test_ui_escapes_document_text():
    from rag.ui_support import escape_markdown

    hostile = "<script>alert(1)</script> **bold** [link](http://x) <img src=x onerror=alert(1)> $x$ # H"
    escaped = escape_markdown(hostile)
    # Every character that Markdown or HTML would interpret is backslash-escaped.
    assert re.search(r"(?<!\\)[<>*\[\]()`$#_!|]", escaped) is None, escaped
    # Escaping is lossless: removing the backslashes gives the text back.
    assert escaped.replace("\\", "") == hostile.replace("\\", "")
