"""The upload panel for issue 18's documents: a password-protected PDF and a web page, through AppTest."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the UI tests need the 'ui' extra: pip install 'hoprag[ui]'")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from fakes import loopback_http  # noqa: E402
from ingest_files import PDF_PASSWORD, make_encrypted_pdf, make_pdf  # noqa: E402
from test_ui_app import doc_names, plain, start, ui_env, upload  # noqa: E402,F401  (fixture)

PAGE = (b"<html><head><title>Lighthouse log</title></head><body><main><h1>Lighthouse log</h1>"
        b"<p>The keeper of the north lighthouse changes the lamp every Tuesday at dawn, weather permitting.</p>"
        b"<p>Visitors may climb the tower on Sundays between noon and four in the afternoon.</p></main></body></html>")


def test_password_protected_pdf_asks_for_the_password(ui_env):
    locked = make_encrypted_pdf(make_pdf(["Alpacas hum when they are content and curious."]))
    at = start()
    upload(at, [("locked.pdf", locked, "application/pdf")], wait=False)
    assert "ingest_job" not in at.session_state or at.session_state.ingest_job.names != ["locked.pdf"]
    assert any("password-protected" in plain(w.value) for w in at.warning), [w.value for w in at.warning]

    at.text_input(key="pdf_password").set_value("wrong")
    at.button(key="add_locked").click().run()
    assert at.session_state.ingest_job.wait(timeout=120)
    at.run()
    assert any("did not open it" in plain(w.value) for w in at.warning), [w.value for w in at.warning]
    assert "locked.pdf" not in doc_names(at)

    at.text_input(key="pdf_password").set_value(PDF_PASSWORD)
    at.button(key="add_locked").click().run()
    assert at.session_state.ingest_job.wait(timeout=120)
    at.run()
    assert "locked.pdf" in doc_names(at)
    assert not at.session_state.locked_uploads


def test_add_a_web_page(ui_env, monkeypatch):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

    monkeypatch.setenv("HOPRAG_ALLOW_PRIVATE_URLS", "true")  # the test's own loopback server
    with loopback_http(Handler) as base:
        at = start()
        at.text_input(key="web_url").set_value("ftp://nowhere")
        at.button(key="add_url").click().run()
        assert any("http://" in plain(e.value) for e in at.error), [e.value for e in at.error]
        url = f"{base}/log.html"
        at.text_input(key="web_url").set_value(url)
        at.button(key="add_url").click().run()
        assert at.session_state.ingest_job.wait(timeout=120)
        at.run()
        assert at.session_state.ingest_job.results[0].status == "added", at.session_state.ingest_job.results
        assert any("log.html" in name or "Lighthouse" in name for name in doc_names(at)), doc_names(at)
