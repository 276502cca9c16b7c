"""Issue 21 in a real browser: a conversation survives a page reload (a new Streamlit session) and a restart of
the server, opens from the sidebar with its sources, and a second tab of the same user sees the same list.

`make run`'s streamlit command over the tiny API knowledge base (ingested through the public API first);
extractive answers (no language model) keep it short. A screenshot goes to test-artifacts/.
"""

from __future__ import annotations

import pytest
from kb_fixture import KB_DOCS, OTTER_QUESTION
from test_ui_browser import (  # noqa: F401  (browser: the fixture)
    ARTIFACTS, BROWSER_MARKS, ask, browser, chat_text, click_button, css, finished_answer, streamlit_app, wait_for,
)

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from rag import RAG, Settings

    tmp = tmp_path_factory.mktemp("ui-conversations")
    with RAG(Settings(data_dir=str(tmp / "data"))) as rag:
        assert rag.ingest([KB_DOCS]).ok
    return tmp


def body(driver) -> str:
    return driver.find_element("tag name", "body").text


def sidebar_titles(driver) -> list[str]:
    texts = [b.text.strip() for b in css(driver, "[data-testid='stSidebar'] [class*='st-key-conv-'] button")]
    return [t for t in texts if t]  # a title button's tooltip holder has no text


def open_from_sidebar(driver, title: str) -> None:
    def find(d):
        return next((b for b in css(d, "[data-testid='stSidebar'] [class*='st-key-conv-'] button")
                     if b.text.strip() == title), False)

    driver.execute_script("arguments[0].click();", wait_for(driver, find, what=f"the conversation {title!r}"))


def test_a_conversation_survives_reload_and_restart_and_is_shared_by_tabs(data_dir, browser):
    driver = browser
    env = dict(HOPRAG_DATA_DIR=str(data_dir / "data"), HOPRAG_ANSWER_MODE="extractive", HOPRAG_TOP_K="2")
    with streamlit_app(data_dir, **env) as url:
        driver.get(url)
        wait_for(driver, lambda d: "No saved conversations yet" in body(d), what="the empty conversation list")
        ask(driver, OTTER_QUESTION)
        answer = finished_answer(driver, OTTER_QUESTION)
        assert "otters.md" in answer.text
        wait_for(driver, lambda d: sidebar_titles(d) == [OTTER_QUESTION], what="the saved conversation in the list")

        # a second tab (another session of the same user) lists it too
        first = driver.current_window_handle
        driver.switch_to.new_window("tab")
        driver.get(url)
        wait_for(driver, lambda d: sidebar_titles(d) == [OTTER_QUESTION], what="the list in the second tab")
        assert OTTER_QUESTION not in chat_text(driver)  # a new session starts with a new chat
        driver.close()
        driver.switch_to.window(first)

        # reload: a new Streamlit session; open the conversation from the sidebar
        driver.refresh()
        wait_for(driver, lambda d: sidebar_titles(d) == [OTTER_QUESTION], what="the list after a reload")
        assert not css(driver, "[data-testid='stChatMessage']")
        open_from_sidebar(driver, OTTER_QUESTION)
        answer = finished_answer(driver, OTTER_QUESTION)
        assert "[1] otters.md" in answer.text, answer.text

    # the server restarts (a new process); the conversation is still there and continues
    with streamlit_app(data_dir, **env) as url:
        driver.get(url)
        open_from_sidebar(driver, OTTER_QUESTION)
        finished_answer(driver, OTTER_QUESTION)
        ask(driver, "What do sea otters eat?")
        finished_answer(driver, "What do sea otters eat?")
        wait_for(driver, lambda d: len(css(d, "[data-testid='stChatMessage']")) == 4, what="both turns")
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "ui-conversations.png"))
        click_button(driver, "New")
        wait_for(driver, lambda d: not css(d, "[data-testid='stChatMessage']"), what="a new chat")
    from rag.chats import ConversationStore

    with ConversationStore.in_data_dir(data_dir / "data") as store:
        [info] = store.list()
        assert (info.title, info.turns) == (OTTER_QUESTION, 2)
