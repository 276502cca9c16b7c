"""Issue 20 in a real browser: with users defined, `make run`'s streamlit command asks for a sign-in first;
a reader signs in through the form in Chromium, sees the chat over the one knowledge base granted and no
upload or delete control, and signs out again.

The data dir holds an admin and a reader (argon2 passwords in the real user store) and two knowledge
bases, ``handbook`` (granted to the reader) and ``secret``. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ui_browser import ARTIFACTS, BROWSER_MARKS, chromium, click_button, css, streamlit_app, wait_for

pytestmark = BROWSER_MARKS

READER, READER_PW = "rita", "rita-reader-pw"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two knowledge bases, an admin and a reader of one of them, then `make run`'s streamlit command."""
    from rag import RAG, Settings
    from rag.auth import Users

    tmp = tmp_path_factory.mktemp("ui-signin")
    data = tmp / "data"
    for kb, text in (("handbook", "Holidays are booked in the staff portal by the first of the month."),
                     ("secret", "The merger with Pelican Corp closes in March.")):
        note = tmp / f"{kb}-notes.md"
        note.write_text(f"# {kb}\n\n{text}\n", encoding="utf-8")
        with RAG(Settings(data_dir=str(data), kb=kb)) as rag:
            assert rag.ingest([str(note)]).ok
    users = Users(data)
    users.add("ada", "admin", "ada-admin-pw")
    users.add(READER, "reader", READER_PW)
    users.grant(READER, "handbook")
    with streamlit_app(tmp, HOPRAG_DATA_DIR=str(data), HOPRAG_ANSWER_MODE="extractive") as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium-profile", size=(1400, 1000))
    yield driver
    driver.quit()


def body(driver) -> str:
    return driver.find_element("tag name", "body").text


def shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 5_000
    return path


def test_reader_signs_in_sees_the_chat_and_no_upload(server, browser):
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(server)
    name = wait_for(driver, lambda d: css(d, "input[aria-label='Name']"), what="the sign-in form")[0]
    assert not css(driver, "[data-testid='stChatInputTextArea']"), "nothing of the app before sign-in"
    shot(driver, "ui-signin-form.png")
    name.send_keys(READER)
    css(driver, "input[aria-label='Password']")[0].send_keys("wrong-password")
    click_button(driver, "Sign in")
    wait_for(driver, lambda d: "Wrong name or password." in body(d), what="the refusal")

    password = css(driver, "input[aria-label='Password']")[0]
    password.send_keys(Keys.CONTROL, "a")  # whatever the field still shows is replaced
    password.send_keys(READER_PW)
    click_button(driver, "Sign in")
    wait_for(driver, lambda d: css(d, "[data-testid='stChatInputTextArea']"), what="the chat after sign-in")
    wait_for(driver, lambda d: "1 document in handbook" in body(d), what="the granted knowledge base")
    text = body(driver)
    assert f"Signed in as {READER}" in text and "reader" in text
    assert "handbook-notes.md" in text and "secret" not in text
    assert not css(driver, "[data-testid='stFileUploaderDropzoneInput']"), "a reader has no upload control"
    assert "Add documents" not in text and "Add a web page" not in text and "New knowledge base" not in text
    assert not [b for b in css(driver, "button") if b.text.strip().endswith("Delete")]
    assert "Manage users" not in text
    path = shot(driver, "ui-signin-reader.png")
    Path("/tmp/hoprag-ui-signin-reader.png").write_bytes(path.read_bytes())

    click_button(driver, "Sign out")
    wait_for(driver, lambda d: css(d, "input[aria-label='Name']"), what="the sign-in form after sign-out")
    assert not css(driver, "[data-testid='stChatInputTextArea']")
