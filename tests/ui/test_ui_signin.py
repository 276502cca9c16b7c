"""Issue 20 in the web UI through AppTest: sign-in when users exist, per-KB visibility, reader controls,
sign-out, session expiry and the admin page.

A real user store (argon2 passwords) in a throwaway data dir with two knowledge bases, ``handbook``
and ``secret``, one short document each, ingested through the public API before the app starts.
"""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit", reason="the UI tests need the 'ui' extra: pip install 'hoprag[ui]'")

from rag import RAG, Settings  # noqa: E402
from rag.auth import Audit, Users  # noqa: E402
from rag.webui import signin  # noqa: E402
from test_ui_app import GOOD_TXT, doc_names, plain, start, ui_env, upload  # noqa: E402,F401  (fixture)

PASSWORDS = {"ada": "ada-admin-pw", "rita": "rita-reader-pw", "eddie": "eddie-editor-pw"}


@pytest.fixture
def team(ui_env, embedder):
    """An admin (ada), a reader of handbook (rita), an editor of handbook (eddie); KBs handbook and secret."""
    data = ui_env / "data"
    for kb, text in (("handbook", "Holidays are booked in the staff portal."),
                     ("secret", "The merger with Pelican Corp closes in March.")):
        note = ui_env / f"{kb}.md"
        note.write_text(f"# {kb}\n\n{text}\n", encoding="utf-8")
        with RAG(Settings(data_dir=str(data), kb=kb), embedder=embedder) as rag:
            assert rag.ingest([str(note)]).ok
    users = Users(data)
    users.add("ada", "admin", PASSWORDS["ada"])
    users.add("rita", "reader", PASSWORDS["rita"])
    users.add("eddie", "editor", PASSWORDS["eddie"])
    users.grant("rita", "handbook")
    users.grant("eddie", "handbook")
    return users


def keys(at, kind: str) -> set[str]:
    return {w.key for w in at.get(kind)}


def signed_in(at) -> bool:
    return "question" in keys(at, "chat_input")


def sign_in(at, name: str, password: str | None = None):
    at.text_input(key="signin_name").set_value(name)
    at.text_input(key="signin_password").set_value(PASSWORDS[name] if password is None else password)
    at.button(key="sign_in").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def actions(users: Users) -> list[tuple[str, str]]:
    return [(r["actor"], r["action"]) for r in Audit(users.data_dir).read()]


def test_no_users_no_sign_in(ui_env):
    at = start()
    assert signed_in(at) and "signin_name" not in keys(at, "text_input")
    assert "uploads" in keys(at, "file_uploader") and "user_name" not in at.session_state


def test_sign_in_required_and_wrong_password_refused(team):
    at = start()
    assert not signed_in(at) and "signin_name" in keys(at, "text_input")
    assert not at.sidebar.get("selectbox"), "nothing of the app before sign-in"
    sign_in(at, "rita", "not-her-password")
    assert not signed_in(at)
    assert [plain(e.value) for e in at.error] == ["Wrong name or password."]
    assert ("rita", "sign_in_failed") in actions(team)
    sign_in(at, "rita")
    assert signed_in(at) and at.session_state.user_name == "rita"
    assert ("rita", "sign_in") in actions(team)


def test_wrong_passwords_are_rate_limited(team):
    at = start()
    for _ in range(5):
        sign_in(at, "rita", "guess-guess")
    sign_in(at, "rita")  # even the right password waits now
    assert not signed_in(at)
    [error] = [plain(e.value) for e in at.error]
    assert error.startswith("Too many failed sign-ins for rita: try again in ") and error.endswith(" s.")


def test_reader_sees_only_granted_kbs_and_no_write_controls(team):
    at = sign_in(start(), "rita")
    assert at.session_state.settings.kb == "handbook", "moved off the default KB, which is not granted"
    assert at.selectbox(key="kb_select").options == ["handbook"], "secret is not listed"
    assert doc_names(at) == ["handbook.md"]
    assert not keys(at, "file_uploader") and "add_url" not in keys(at, "button")
    assert not [k for k in keys(at, "button") if k.startswith("delete-")]
    assert "new_kb" not in keys(at, "text_input") and "create_kb" not in keys(at, "button")
    assert "admin_open" not in keys(at, "toggle")
    # the LLM server is the admin's to pick: the fields are disabled, and a crafted change is not applied
    assert at.radio(key="set_engine").disabled and at.text_input(key="set_url").disabled
    at.session_state["set_url"] = "http://10.0.0.1:8000/v1"  # AppTest, like a browser, refuses disabled widgets
    at.session_state["set_model"] = "internal"
    at.session_state["set_engine"] = "openai"
    at.number_input(key="set_top_k").set_value(3)
    at.button(key="apply_settings").click().run()
    assert at.session_state.settings.engine == "local" and not at.session_state.settings.llm_base_url
    assert at.session_state.settings.top_k == 3
    # grants are read on every run: a revoked KB is left at once, a new grant shows up
    team.grant("rita", "secret", actor="ada")
    team.revoke("rita", "handbook", actor="ada")
    at.run()
    assert at.session_state.settings.kb == "secret" and doc_names(at) == ["secret.md"]
    assert at.selectbox(key="kb_select").options == ["secret"]


def test_granted_kb_without_documents_is_listed(team):
    """A KB granted before it has documents: listed; a reader is told who can fill it, an editor can upload."""
    team.grant("rita", "empty", actor="ada")
    at = sign_in(start(), "rita")
    assert at.selectbox(key="kb_select").options == ["empty", "handbook"]
    at.selectbox(key="kb_select").set_value("empty").run()
    assert at.session_state.settings.kb == "empty"
    assert any("an editor or an admin" in i.value for i in at.info), [i.value for i in at.info]
    assert "load_sample" not in keys(at, "button") and not keys(at, "file_uploader")
    team.grant("eddie", "empty", actor="ada")
    at = sign_in(start(), "eddie")
    at.selectbox(key="kb_select").set_value("empty").run()
    assert "load_sample" in keys(at, "button") and "uploads" in keys(at, "file_uploader")


def test_editor_uploads_then_a_stale_delete_button_is_refused_after_demotion(team):
    """An editor's upload is audited; their delete button clicked after they became a reader deletes nothing."""
    at = sign_in(start(), "eddie")
    assert "create_kb" not in keys(at, "button"), "only admins create knowledge bases"
    upload(at, [("otters.txt", GOOD_TXT, "text/plain")])
    assert sorted(doc_names(at)) == ["handbook.md", "otters.txt"]
    [ingest] = Audit(team.data_dir).read(action="ingest")
    assert (ingest["actor"], ingest["target"], ingest["sources"]) == ("eddie", "handbook", ["otters.txt"])
    delete = next(b for b in at.button if (b.key or "").startswith("delete-") and "otters" in b.help)
    team.set_role("eddie", "reader", actor="ada")
    delete.click().run()
    assert sorted(doc_names(at)) == ["handbook.md", "otters.txt"]
    with RAG(Settings(data_dir=str(team.data_dir), kb="handbook")) as rag:
        assert len(rag.documents()) == 2
    assert not Audit(team.data_dir).read(action="document_delete")
    assert not keys(at, "file_uploader"), "the reader's page has no upload any more"


def test_sign_out(team):
    at = sign_in(start(), "rita")
    at.button(key="sign_out").click().run()
    assert not signed_in(at) and "user_name" not in at.session_state
    assert "signin_name" in keys(at, "text_input")
    assert ("rita", "sign_out") in actions(team)


def test_session_expires(team, monkeypatch):
    at = sign_in(start(), "rita")
    minutes = at.session_state.settings.session_minutes
    later = signin.now() + minutes * 60 + 1
    monkeypatch.setattr(signin, "now", lambda: later)
    at.run()
    assert not signed_in(at) and "user_name" not in at.session_state
    assert any("expired" in i.value for i in at.info), [i.value for i in at.info]
    assert [r.get("reason", "") for r in Audit(team.data_dir).read(action="sign_out")][-1].startswith(
        "Your session expired")


def test_admin_adds_a_user_and_grants_a_kb(team):
    at = sign_in(start(), "ada")
    assert at.selectbox(key="kb_select").options == ["default", "handbook", "secret"]
    at.toggle(key="admin_open").set_value(True).run()
    assert not at.exception and "Manage users" in [t.value for t in at.title]
    at.text_input(key="admin_add_name").set_value("bob")
    at.selectbox(key="admin_add_role").set_value("editor")
    at.text_input(key="admin_add_password").set_value("bob-the-editor")
    at.multiselect(key="admin_add_kbs").set_value(["handbook"])
    at.button(key="admin_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [code] = at.code
    assert code.value.startswith("hrk_") and team.authenticate(code.value).name == "bob"
    assert team.get("bob").role == "editor" and team.get("bob").kbs == {"handbook"}
    # grant another KB on the Users tab (bob is selected after being added)
    assert at.selectbox(key="admin_user").value == "bob"
    at.multiselect(key="admin_grants_bob").set_value(["handbook", "secret"])
    at.button(key="admin_save_grants_bob").click().run()
    assert team.get("bob").kbs == {"handbook", "secret"}
    assert ("ada", "user_add") in actions(team) and ("ada", "grant") in actions(team)
    # the key is shown once: gone after it is acknowledged
    at.button(key="admin_key_done").click().run()
    assert not at.code
    # reset a password, make and revoke a key
    at.text_input(key="admin_password_bob").set_value("bob-new-password")
    at.button(key="admin_set_password_bob").click().run()
    assert team.sign_in("bob", "bob-new-password") is not None
    at.text_input(key="admin_key_label_bob").set_value("laptop")
    at.button(key="admin_new_key_bob").click().run()
    second = at.code[0].value
    assert team.authenticate(second).name == "bob"
    at.button(key=f"admin_revoke_{second.split('_')[1]}").click().run()
    assert team.authenticate(second) is None
    password = "bob-new-password"
    # the audit tab lists the admin's actions
    audit = at.dataframe[-1].value  # the Users tab's table, then the Audit tab's
    assert {"user_add", "grant"} <= set(audit["action"]) and "ada" in set(audit["actor"])
    # bob signs in elsewhere and sees both KBs
    other = sign_in(start(), "bob", password)
    assert other.selectbox(key="kb_select").options == ["handbook", "secret"]


def test_admin_page_refuses_non_admins(team):
    """The admin callbacks check the store: a user demoted while the page is open can change nothing."""
    team.add("ann", "admin", "ann-admin-pw")
    at = start()
    at.text_input(key="signin_name").set_value("ann")
    at.text_input(key="signin_password").set_value("ann-admin-pw")
    at.button(key="sign_in").click().run()
    at.toggle(key="admin_open").set_value(True).run()
    team.set_role("ann", "reader", actor="ada")
    at.text_input(key="admin_add_name").set_value("mallory")
    at.button(key="admin_add").click().run()
    assert team.get("mallory") is None
    assert "Manage users" not in [t.value for t in at.title]


def oidc_app(user: dict):
    """The app with an OIDC provider in its secrets and ``user`` as Streamlit's st.user."""
    from streamlit.testing.v1 import AppTest
    from test_ui_app import APP

    at = AppTest.from_file(str(APP), default_timeout=240)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "hoprag", "client_secret": "s",
                          "server_metadata_url": "https://id.example.org/.well-known/openid-configuration"}
    at.user = user
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_oidc_sign_in_maps_the_identity_to_a_hoprag_user(team):
    team.add("rita@example.org", "reader")  # an OIDC user needs no password
    team.grant("rita@example.org", "handbook")
    at = oidc_app({"is_logged_in": False})
    assert not signed_in(at) and "oidc_default" in keys(at, "button")
    assert "signin_name" not in keys(at, "text_input"), "OIDC replaces the password form"

    at = oidc_app({"is_logged_in": True, "email": "rita@example.org", "name": "Rita"})
    assert signed_in(at) and at.session_state.user_name == "rita@example.org"
    assert at.selectbox(key="kb_select").options == ["handbook"] and not keys(at, "file_uploader")
    assert ("rita@example.org", "sign_in") in actions(team)

    at = oidc_app({"is_logged_in": True, "email": "stranger@example.org"})
    assert not signed_in(at)
    assert any("not a hoprag user" in plain(e.value) for e in at.error), [e.value for e in at.error]
