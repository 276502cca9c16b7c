"""The real thing: `make run`'s command serves app.py on loopback, Debian's chromium drives it.

Uploads a file, asks a question, waits for a streamed answer with a citation,
saves a screenshot under test-artifacts/, and checks that a second browser
session (another tab: another Streamlit session) does not see the first one's
chat. Skips only where chromium or chromedriver is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from servers import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# Every browser test module uses these marks: the slow tier, and a skip with the reason where Chromium is absent.
BROWSER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM or not os.path.exists(CHROMEDRIVER),
        reason="Debian's chromium and chromium-driver are not installed "
        "(make test installs them with apt where it can: bash scripts/ensure_test_deps.sh)",
    ),
]
pytestmark = BROWSER_MARKS

QUESTION_A = "What is the launch code?"
NOTES = "# Field notes\n\nThe launch code is BLUE-42. It is kept in the vault under the lighthouse.\n"
WAIT_S = 300  # the local LLM shares two cores with the rest of the suite


@contextmanager
def streamlit_app(tmp: Path, **env_vars: str) -> Iterator[str]:
    """`make run`'s streamlit command on a free loopback port with ``env_vars`` set; yields its URL."""
    port = free_port()
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", **env_vars)
    url = f"http://127.0.0.1:{port}"
    with serving(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        ready_url=f"{url}/_stcore/health", ready=lambda body: body == b"ok", log_path=tmp / "streamlit.log",
        timeout_s=90, what="streamlit", cwd=ROOT, env=env,
    ):
        yield url


def chromium(profile: Path, *extra_flags: str, size: tuple[int, int] = (1440, 1400)):
    """Headless Debian chromium driven by chromedriver, with a throwaway profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={profile}", *extra_flags,
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`make run`'s streamlit command with a throwaway data dir."""
    tmp = tmp_path_factory.mktemp("ui-server")
    with streamlit_app(tmp, HOPRAG_DATA_DIR=str(tmp / "data"), HOPRAG_MAX_NEW_TOKENS="16", HOPRAG_TOP_K="2") as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium-profile")
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout=WAIT_S, what=""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(condition, message=f"timed out waiting for {what}")


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def click_button(driver, label: str) -> None:
    """Click the enabled button whose text ends with ``label`` (an icon's name may come first)."""
    from selenium.webdriver.common.by import By

    def find(d):
        buttons = d.find_elements(By.TAG_NAME, "button")
        return next((b for b in buttons if b.text.strip().endswith(label) and b.is_enabled()), False)

    button = wait_for(driver, find, what=f"button {label!r}")
    driver.execute_script("arguments[0].click();", button)


def expand(driver, summary) -> None:
    """Open an expander by its summary (a click on an open one would close it)."""
    driver.execute_script("const d = arguments[0].closest('details'); if (!d.open) arguments[0].click();", summary)


def ask(driver, question: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = wait_for(driver, lambda d: css(d, "[data-testid='stChatInputTextArea']"), what="chat input")[0]
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def finished_answer(driver, question: str):
    """The assistant's message for ``question`` once its sources are shown (the run ended)."""

    def check(d):
        messages = css(d, "[data-testid='stChatMessage']")
        texts = [m.text for m in messages]
        if question not in "\n".join(texts) or css(d, "[data-testid='stSpinner']"):
            return False
        answers = [m for m in messages if css(m, "[data-testid='stChatMessageAvatarAssistant']")]
        if not answers or "Sources" not in answers[-1].text:
            return False
        return answers[-1]

    return wait_for(driver, check, what=f"a cited answer to {question!r}")


def chat_text(driver) -> str:
    return "\n".join(m.text for m in css(driver, "[data-testid='stChatMessage']"))


def test_upload_ask_cited_answer_and_separate_sessions(server, browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    driver = browser
    notes = tmp_path / "field-notes.md"
    notes.write_text(NOTES, encoding="utf-8")

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    driver.get(server)
    wait_for(driver, lambda d: "knowledge base is empty" in d.find_element("tag name", "body").text,
             what="the empty-state hint")
    timings["page_ready_s"] = time.monotonic() - t0
    # upload through the real file input, then ingest
    wait_for(driver, lambda d: css(d, "[data-testid='stFileUploaderDropzoneInput']"), what="the uploader")[0].send_keys(
        str(notes)
    )
    wait_for(driver, lambda d: "field-notes.md" in d.find_element("tag name", "body").text, what="the staged file")
    click_button(driver, "Add to knowledge base")
    wait_for(driver, lambda d: "1 document in" in d.find_element("tag name", "body").text, what="the document list")

    timings["ingested_s"] = time.monotonic() - t0
    ask(driver, QUESTION_A)
    answer = finished_answer(driver, QUESTION_A)
    assert "[1] field-notes.md" in answer.text, answer.text
    body_lines = answer.text.split("Sources")[0].strip()
    assert body_lines, "the assistant message has no answer text"
    assert "How this answer was found" in answer.text
    # open the citation: the passage text shows, literally
    citation = next(e for e in css(answer, "[data-testid='stExpander'] summary") if "[1] field-notes.md" in e.text)
    expand(driver, citation)
    wait_for(driver, lambda d: "BLUE-42" in answer.text.split("Sources")[1], what="the cited passage")
    trace = next(e for e in css(answer, "[data-testid='stExpander'] summary") if "How this answer was found" in e.text)
    expand(driver, trace)
    wait_for(driver, lambda d: "First token" in answer.text and "1. dense" in answer.text, what="the trace")
    timings["answer_shown_s"] = time.monotonic() - t0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "ui-answer.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    # a second browser session sees the shared knowledge base but not the first chat
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(server)
    wait_for(driver, lambda d: "1 document in" in d.find_element("tag name", "body").text, what="the second session")
    assert QUESTION_A not in chat_text(driver) and not css(driver, "[data-testid='stChatMessage']")
    # its own settings: a change here does not reach the first session
    # The page renders in parts: wait for the sidebar's input, not just the document count.
    top_k = wait_for(driver, lambda d: css(d, "input[aria-label='Passages per answer (top-k)']"), what="top-k input")[0]
    top_k.send_keys(Keys.CONTROL, "a")
    top_k.send_keys("4")
    click_button(driver, "Apply settings")
    wait_for(driver, lambda d: "top-4" in d.find_element("tag name", "body").text, what="the applied setting")
    driver.save_screenshot(str(ARTIFACTS / "ui-second-session.png"))

    # back in the first session, a rerun still shows its chat and its settings
    driver.switch_to.window(first)
    click_button(driver, "Refresh")
    wait_for(driver, lambda d: QUESTION_A in chat_text(d) and "top-2" in d.find_element("tag name", "body").text,
             what="the first session after a rerun")
    assert "top-4" not in driver.find_element("tag name", "body").text
    timings["total_s"] = time.monotonic() - t0
    (ARTIFACTS / "ui-browser-timings.json").write_text(json.dumps(timings, indent=1), encoding="utf-8")
