"""The web UI's admin page (issue 20): users, roles, grants, passwords, API keys and the audit log.

Shown in place of the chat when a signed-in admin turns on "Manage users" in the sidebar
(:func:`rag.webui.signin.account`). It is a thin layer over :class:`rag.auth.Users`, the same
store ``hoprag users`` changes; every action is a callback that first checks, against the store,
that the session's user is still an admin (a hidden page is not a permission), and the store
records each change in the audit log. A new API key is shown once, right after it is made.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import wraps
from typing import Callable

import streamlit as st

from rag import HopragError, Settings
from rag.auth import ROLES, Audit, Users
from rag.ui_support import escape_markdown, knowledge_bases
from rag.webui import signin

ss = st.session_state
AUDIT_ROWS = 200  # the audit tab shows this many of the latest records


def when(epoch: float | None) -> str:
    """An epoch time as a short UTC date and time; '–' for never."""
    if epoch is None:
        return "–"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _action(fn: Callable[..., str]) -> Callable[..., None]:
    """A callback of the admin page: only for a signed-in admin; its message or error is shown after the rerun."""

    @wraps(fn)
    def run(*args) -> None:
        view = signin.viewer(ss.settings)
        if not view.manages_users:
            ss.admin_error = "Only a signed-in admin can manage users."
            return
        try:
            ss.admin_notice, ss.admin_error = fn(view.users, {"actor": view.name, "source": signin.source()}, *args), ""
        except (HopragError, ValueError) as exc:
            ss.admin_error = str(exc)

    return run


@_action
def add_user(users: Users, who: dict) -> str:
    name = ss.get("admin_add_name", "").strip()
    role = ss.get("admin_add_role", "reader")
    if not name:
        raise ValueError("Enter the new user's name.")
    user, key = users.add(name, role, password=ss.get("admin_add_password") or None, **who)
    for kb in ss.get("admin_add_kbs", []):
        users.grant(user.name, kb, **who)
    ss.admin_new_key = (user.name, key)
    ss.admin_user = user.name
    return f"Added {user.name} ({role})."


@_action
def set_role(users: Users, who: dict, name: str) -> str:
    role = ss.get(f"admin_role_{name}")
    users.set_role(name, role, **who)
    return f"{name} is now {role}."


@_action
def save_grants(users: Users, who: dict, name: str) -> str:
    user = users.get(name)
    if user is None:
        raise ValueError(f"there is no user {name!r}")
    wanted = set(ss.get(f"admin_grants_{name}", []))
    for kb in sorted(wanted - user.kbs):
        users.grant(name, kb, **who)
    for kb in sorted(user.kbs - wanted):
        users.revoke(name, kb, **who)
    return f"{name} may use: {', '.join(sorted(wanted)) or 'no knowledge base'}."


@_action
def set_password(users: Users, who: dict, name: str) -> str:
    password = ss.get(f"admin_password_{name}", "")
    ss[f"admin_password_{name}"] = ""
    if not password:
        raise ValueError("Enter the new password.")
    users.set_password(name, password, **who)
    return f"Password of {name} changed."


@_action
def new_key(users: Users, who: dict, name: str) -> str:
    label = ss.get(f"admin_key_label_{name}", "").strip()
    ss.admin_new_key = (name, users.new_key(name, label, **who))
    return f"New API key for {name}."


@_action
def revoke_key(users: Users, who: dict, name: str, key_id: str) -> str:
    users.revoke_key(name, key_id, **who)
    return f"API key {key_id} of {name} revoked: it fails from now on."


@_action
def remove_user(users: Users, who: dict, name: str) -> str:
    if name == who["actor"]:
        raise ValueError("You cannot remove yourself: another admin can.")
    if not ss.get(f"admin_remove_sure_{name}"):
        raise ValueError(f"Tick 'Yes, remove {name}' first.")
    users.remove(name, **who)
    ss.pop("admin_user", None)
    return f"Removed {name}."


def _messages() -> None:
    if ss.get("admin_notice"):
        st.success(escape_markdown(ss.admin_notice))
        ss.admin_notice = ""
    if ss.get("admin_error"):
        st.error(escape_markdown(ss.admin_error))
        ss.admin_error = ""
    shown = ss.get("admin_new_key")
    if shown:
        name, key = shown
        st.warning(escape_markdown(f"API key of {name}: copy it now, it is shown only this once."),
                   icon=":material/key:")
        st.code(key, language=None)
        if st.button("I have copied it", key="admin_key_done"):
            ss.admin_new_key = None
            st.rerun()


def _users_tab(users: Users, admin: str, kbs: list[str]) -> None:
    people = users.list()
    st.dataframe(
        [{"user": u.name, "role": u.role,
          "knowledge bases": "all" if u.is_admin else ", ".join(sorted(u.kbs)) or "none",
          "API keys": sum(k.active for k in users.keys(u.name))} for u in people],
        hide_index=True, key="admin_users_table",
    )
    names = [u.name for u in people]
    if ss.get("admin_user") not in names:
        ss.admin_user = names[0]
    st.selectbox("User", names, key="admin_user")
    user = users.get(ss.admin_user)
    if user is None:
        return
    name = user.name
    with st.container(border=True):
        with st.form(f"admin_role_form_{name}", border=False):
            st.selectbox("Role", list(ROLES), index=list(ROLES).index(user.role), key=f"admin_role_{name}",
                         help="admin: everything, manages users · editor: upload and delete in the knowledge "
                         "bases granted · reader: ask only, in the knowledge bases granted")
            st.form_submit_button("Set role", key=f"admin_set_role_{name}", on_click=set_role, args=(name,))
        if user.is_admin:
            st.caption("Admins may use every knowledge base.")
        else:
            with st.form(f"admin_grants_form_{name}", border=False):
                st.multiselect("Knowledge bases granted", sorted(set(kbs) | user.kbs), default=sorted(user.kbs),
                               key=f"admin_grants_{name}", accept_new_options=True,
                               help="Type a name to grant a knowledge base that does not exist yet")
                st.form_submit_button("Save grants", key=f"admin_save_grants_{name}", on_click=save_grants,
                                      args=(name,))
        with st.form(f"admin_password_form_{name}", border=False):
            st.text_input("New password", type="password", key=f"admin_password_{name}",
                          autocomplete="new-password")
            st.form_submit_button("Reset password", key=f"admin_set_password_{name}", on_click=set_password,
                                  args=(name,))
    st.markdown(f"**API keys of {escape_markdown(name)}**")
    keys = users.keys(name)
    if not keys:
        st.caption("No API keys yet.")
    for info in keys:
        with st.container(horizontal=True, vertical_alignment="center"):
            status = "active" if info.active else f"revoked {when(info.revoked)}"
            st.markdown(escape_markdown(
                f"{info.label or '(no label)'} · {info.key_id} · created {when(info.created)} · "
                f"last used {when(info.last_used)} · {status}"), width="stretch")
            if info.active:
                st.button("Revoke", key=f"admin_revoke_{info.key_id}", on_click=revoke_key, args=(name, info.key_id),
                          type="tertiary", icon=":material/key_off:")
    with st.form(f"admin_key_form_{name}", border=False, clear_on_submit=True):
        st.text_input("Label of a new key", key=f"admin_key_label_{name}", placeholder="e.g. laptop script")
        st.form_submit_button("Create API key", key=f"admin_new_key_{name}", on_click=new_key, args=(name,))
    if name != admin:
        with st.expander(f"Remove {name}"):
            st.checkbox(f"Yes, remove {name}", key=f"admin_remove_sure_{name}")
            st.button("Remove user", key=f"admin_remove_{name}", on_click=remove_user, args=(name,))


def _add_tab(kbs: list[str]) -> None:
    with st.form("admin_add_form", border=False, clear_on_submit=True):
        st.text_input("Name", key="admin_add_name", placeholder="e.g. ana or ana@example.org")
        st.selectbox("Role", list(ROLES), index=list(ROLES).index("reader"), key="admin_add_role")
        st.text_input("Password (optional: without one, the user has only the API key)", type="password",
                      key="admin_add_password", autocomplete="new-password")
        st.multiselect("Knowledge bases granted", kbs, key="admin_add_kbs", accept_new_options=True)
        st.form_submit_button("Add user", type="primary", key="admin_add", on_click=add_user)


def _audit_tab(settings: Settings) -> None:
    records = Audit(settings.data_dir).read(limit=AUDIT_ROWS)
    if not records:
        st.caption("Nothing recorded yet.")
        return
    st.caption(f"The latest {len(records)} records, newest first (all of them:  hoprag audit).")
    base = ("time", "actor", "action", "target", "source")
    rows = [{**{k: r.get(k, "") for k in base},
             "details": ", ".join(f"{k}={v}" for k, v in r.items() if k not in base)} for r in reversed(records)]
    st.dataframe(rows, hide_index=True, key="admin_audit_table")


def page(settings: Settings) -> bool:
    """Draw the admin page if a signed-in admin opened it; returns whether it was drawn (the chat is not)."""
    view = signin.viewer(settings)
    if not (view.manages_users and ss.get("admin_open")):
        return False
    st.title("Manage users")
    st.caption("The same users, grants and keys as  hoprag users  on the command line. Turn off "
               "“Manage users” in the sidebar to go back to the chat.")
    _messages()
    kbs = knowledge_bases(settings)
    users_tab, add_tab, audit_tab = st.tabs(["Users", "Add a user", "Audit log"])
    with users_tab:
        _users_tab(view.users, view.name, kbs)
    with add_tab:
        _add_tab(kbs)
    with audit_tab:
        _audit_tab(settings)
    return True
