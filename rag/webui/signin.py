"""Who is using this browser session of the web UI, and what they may do (issue 20).

With no users defined (``hoprag users add`` never run) the UI is open as it always was:
:func:`viewer` says everyone may do everything and nobody signs in. Once users exist,
:func:`gate` shows a sign-in form before anything else, either a name and password checked by
:meth:`rag.auth.Users.sign_in` (which rate-limits and audits it), or, when an OpenID Connect
provider is configured in Streamlit's secrets (``[auth]`` in ``.streamlit/secrets.toml``),
Streamlit's own ``st.login``, whose e-mail (or name) must be a hoprag user's name. A sign-in
lasts ``session_minutes``; the session state then keeps ``user_name`` (the agreed key other
parts of the UI read, e.g. as the owner of saved conversations) and when it was signed in.

Every check reads the user store again, so a revoked grant, a changed role or a removed user
takes effect on the next click, and the callbacks that change data ask :func:`viewer` too (a
hidden button is not a permission: a crafted rerun can still fire its callback).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import streamlit as st

from rag import Settings
from rag.auth import Audit, SignInLimited, User, Users
from rag.extras import require
from rag.ui_support import escape_markdown, knowledge_bases

ss = st.session_state
USER_KEY = "user_name"  # agreed with the rest of the UI: the signed-in user's name, unset when nobody signs in
SINCE_KEY = "signed_in_at"
VIA_KEY = "signed_in_via"  # "password" or "oidc"


def now() -> float:
    """The wall clock (a function, so a test can move it forward)."""
    return time.time()


@dataclass(frozen=True)
class Viewer:
    """What this browser session may do: everything when no users are defined, else its user's grants."""

    user: User | None
    users: Users | None  # None: no users are defined, the UI is open as in single-user mode

    @property
    def open(self) -> bool:
        return self.users is None

    @property
    def name(self) -> str:
        return self.user.name if self.user is not None else ""

    def can_read(self, kb: str) -> bool:
        return self.open or (self.user is not None and self.user.can_read(kb))

    def can_write(self, kb: str) -> bool:
        """Upload, add web pages, delete documents, load the sample."""
        return self.open or (self.user is not None and self.user.can_write(kb))

    @property
    def manages_kbs(self) -> bool:
        """Create (and delete) knowledge bases: admins, or anyone when the UI is open."""
        return self.open or (self.user is not None and self.user.is_admin)

    @property
    def picks_llm_server(self) -> bool:
        """Point the session at another LLM server (engine, URL, model): on a shared UI, an admin only."""
        return self.manages_kbs

    @property
    def manages_users(self) -> bool:
        """The admin page: only a signed-in admin (an open UI has no users to manage)."""
        return self.user is not None and self.user.is_admin

    def visible(self, kbs: Iterable[str]) -> list[str]:
        """Those of ``kbs`` this session may read, plus the ones granted that hold no documents yet."""
        kbs = list(kbs)
        if self.open:
            return kbs
        if self.user is None:
            return []
        return self.users.visible(self.user, sorted(set(kbs) | self.user.kbs))


def client_ip() -> str | None:
    """The browser's address; None where Streamlit reports none (localhost, a local proxy, AppTest)."""
    try:
        return st.context.ip_address
    except Exception:  # no browser connection (AppTest, bare mode)
        return None


def source() -> str:
    """Where the session comes from, for the audit log."""
    return f"web {client_ip() or 'localhost'}"


def _expired(settings: Settings) -> bool:
    return now() - float(ss.get(SINCE_KEY, 0.0)) > settings.session_minutes * 60


def viewer(settings: Settings) -> Viewer:
    """This session's rights now: no user once the sign-in expired or the user was removed."""
    users = Users.of(settings)
    if not users.any():
        return Viewer(None, None)
    name = ss.get(USER_KEY)
    user = users.get(name) if name and not _expired(settings) else None
    return Viewer(user, users)


def record(settings: Settings, action: str, target: str = "", **extra) -> None:
    """Audit a change the signed-in user made in the UI (nothing is recorded while no users exist)."""
    name = ss.get(USER_KEY)
    if name:
        Audit(settings.data_dir).record(name, action, target, source(), **extra)


def forget() -> None:
    """Clear the whole session: the next person at this browser sees nothing of the last one's."""
    for key in list(ss.keys()):
        del ss[key]


def sign_out(settings: Settings, reason: str = "") -> None:
    """Audit the sign-out and forget the session (an OIDC sign-in also drops Streamlit's identity cookie)."""
    name, via = ss.get(USER_KEY), ss.get(VIA_KEY)
    if name:
        extra = {"reason": reason} if reason else {}
        Audit(settings.data_dir).record(name, "sign_out", name, source(), **extra)
    forget()
    if reason:
        ss.signin_notice = reason
    if via == "oidc":
        st.logout()


def _signed_in(user: User, via: str) -> None:
    ss[USER_KEY] = user.name
    ss[SINCE_KEY] = now()
    ss[VIA_KEY] = via


# ---- OpenID Connect through st.login -------------------------------------------------
def oidc_providers() -> list[str] | None:
    """None without an ``[auth]`` section in Streamlit's secrets; else its named providers ([] = the default one)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return None
        auth = st.secrets.get("auth")
    except Exception:  # unreadable secrets: as if none were configured (Streamlit reports the file itself)
        return None
    if not auth:
        return None
    return sorted(name for name, value in auth.items() if isinstance(value, Mapping))


def oidc_identity(info: Mapping) -> str:
    """The hoprag user name an OIDC identity maps to: its e-mail, else its name."""
    return str(info.get("email") or info.get("name") or "")


def _oidc_gate(settings: Settings, users: Users, providers: list[str]) -> None:
    """Sign in with the configured provider; the identity must be a hoprag user."""
    if not st.user.is_logged_in:
        require("authlib", "ui")  # st.login needs Authlib; say which extra installs it
        st.title("hoprag")
        st.caption("Sign in to ask questions about your team's documents.")
        for provider in providers or [None]:
            label = f"Sign in with {provider}" if provider else "Sign in"
            st.button(label, key=f"oidc_{provider or 'default'}", type="primary", on_click=st.login,
                      args=(provider,) if provider else ())
        st.stop()
    identity = oidc_identity(st.user.to_dict())
    user = users.get(identity) if identity else None
    if user is None:
        st.error(escape_markdown(
            f"You are signed in as {identity or 'an identity without e-mail or name'}, which is not a hoprag user: "
            f"ask an admin to run  hoprag users add {identity or 'NAME'} --role reader"
        ))
        st.button("Sign out", key="sign_out", on_click=st.logout)
        st.stop()
    if ss.get(USER_KEY) != user.name:
        Audit(settings.data_dir).record(user.name, "sign_in", user.name, source(), via="oidc")
        _signed_in(user, "oidc")


# ---- name and password --------------------------------------------------------------
def _try_password(users: Users) -> None:
    """The sign-in form's callback: check the password (rate-limited and audited by the store)."""
    name, password = ss.get("signin_name", "").strip(), ss.get("signin_password", "")
    ss.signin_password = ""  # never kept in the session
    if not name or not password:
        ss.signin_error = "Enter your name and password."
        return
    try:
        user = users.sign_in(name, password, source=source(), per_source=client_ip() is not None)
    except SignInLimited as exc:
        wait = max(1, int(round(exc.retry_after_s)))
        ss.signin_error = f"Too many failed sign-ins for {name}: try again in {wait} s."
        return
    if user is None:
        ss.signin_error = "Wrong name or password."
        return
    ss.signin_error = ""
    ss.signin_notice = ""
    _signed_in(user, "password")


def _password_gate(users: Users) -> None:
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("hoprag")
        st.caption("Sign in to ask questions about your team's documents.")
        if ss.get("signin_notice"):
            st.info(escape_markdown(ss.signin_notice))
        with st.form("signin_form", border=True):
            st.text_input("Name", key="signin_name", autocomplete="username")
            st.text_input("Password", type="password", key="signin_password", autocomplete="current-password")
            st.form_submit_button("Sign in", type="primary", key="sign_in", on_click=_try_password, args=(users,))
        if ss.get("signin_error"):
            st.error(escape_markdown(ss.signin_error))
        st.caption("No account? An admin adds one with  hoprag users add NAME --role reader  "
                   "or on the admin page.")
    st.stop()


def gate(settings: Settings, switch_kb: Callable[[str], None]) -> Viewer:
    """Return this session's :class:`Viewer`, or draw the sign-in screen and stop the run.

    Also moves the session off a knowledge base its user may not read (``switch_kb``), and stops
    with a hint when no knowledge base is shared with them.
    """
    users = Users.of(settings)
    if not users.any():
        ss.pop(USER_KEY, None)
        return Viewer(None, None)
    if ss.get(USER_KEY):
        if _expired(settings):
            minutes = settings.session_minutes
            sign_out(settings, f"Your session expired after {minutes} minutes: sign in again.")
        elif users.get(ss[USER_KEY]) is None:
            sign_out(settings, "Your account was removed.")
    if not ss.get(USER_KEY) or ss.get(VIA_KEY) == "oidc":
        providers = oidc_providers()
        if providers is not None:
            _oidc_gate(settings, users, providers)
        else:
            _password_gate(users)
    view = viewer(settings)
    if not view.can_read(settings.kb):
        readable = view.visible(knowledge_bases(settings))
        if readable:
            switch_kb(readable[0])
        else:
            st.title("hoprag")
            st.info(escape_markdown(
                f"Signed in as {view.name}: no knowledge base is shared with you yet. "
                f"Ask an admin to grant you one (hoprag users grant {view.name} KB)."
            ))
            account(settings, view)
            st.stop()
    return view


def account(settings: Settings, view: Viewer) -> None:
    """The sidebar's account line: who is signed in, the admin page toggle, sign-out."""
    if view.open:
        return
    with st.sidebar:
        with st.container(horizontal=True, vertical_alignment="center"):
            role = view.user.role if view.user is not None else ""
            st.caption(f"Signed in as **{escape_markdown(view.name)}** · {role}", width="stretch")
            if st.button("Sign out", key="sign_out", icon=":material/logout:", type="tertiary"):
                sign_out(settings)
                st.rerun()
        if view.manages_users:
            st.toggle("Manage users", key="admin_open", help="Users, roles, grants, API keys and the audit log")
