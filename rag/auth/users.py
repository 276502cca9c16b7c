"""The user store: users with a role, their knowledge-base grants, passwords and API keys (``users.sqlite3``).

Every change is one SQLite transaction and one audit record
(:class:`~rag.auth.audit.Audit`); ``actor`` and ``source`` say who made it
and from where. No user means single-user mode (:meth:`Users.any` is False):
the callers then let everything through, as before users existed.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from rag.auth import keys as api_keys
from rag.auth import passwords
from rag.auth.audit import Audit
from rag.auth.db import Db
from rag.auth.errors import AuthError, SignInLimited
from rag.auth.keys import KeyInfo
from rag.auth.throttle import Throttle

ROLES = ("admin", "editor", "reader")
NAME_RULE = "1-64 letters, digits, '.', '_', '-' or '@'"
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_KB = re.compile(r"[A-Za-z0-9_-]{1,48}")  # the rule of Settings.kb
LAST_USED_RESOLUTION_S = 60.0  # a key's last-used time is written at most once a minute


@dataclass(frozen=True)
class User:
    """A signed-in user or the owner of an API key: name, role and the knowledge bases granted."""

    name: str
    role: str
    kbs: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_read(self, kb: str) -> bool:
        """Ask questions of ``kb``: an admin any, anyone else the knowledge bases granted."""
        return self.is_admin or kb in self.kbs

    def can_write(self, kb: str) -> bool:
        """Upload to and delete from ``kb``: an admin any, an editor those granted, a reader never."""
        return self.is_admin or (self.role == "editor" and kb in self.kbs)

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.name, "role": self.role, "kbs": sorted(self.kbs)}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AuthError(f"user name {name!r} is not allowed: use {NAME_RULE}")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not allowed; choose one of: {', '.join(ROLES)}")
    return role


def check_kb(kb: str) -> str:
    if not isinstance(kb, str) or not _KB.fullmatch(kb):
        raise AuthError(f"knowledge base name {kb!r} is not allowed: use 1-48 letters, digits, '-' or '_'")
    return kb


class Users:
    """The users of one data dir (``<data_dir>/users.sqlite3``), audited in ``<data_dir>/audit.jsonl``."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        throttle: Throttle | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.db = Db(self.data_dir)
        self.audit = Audit(self.data_dir)
        self.throttle = throttle or Throttle()
        self.clock = clock

    @classmethod
    def of(cls, settings: Any) -> "Users":
        """The users of ``settings.data_dir``."""
        return cls(settings.data_dir)

    # ---- reading ----------------------------------------------------------------------
    def any(self) -> bool:
        """Whether any user is defined (False: single-user mode). Creates nothing."""
        with self.db.read() as conn:
            return conn is not None and conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def get(self, name: str) -> User | None:
        with self.db.read() as conn:
            return None if conn is None else self._user(conn, name)

    def list(self) -> list[User]:
        with self.db.read() as conn:
            if conn is None:
                return []
            grants: dict[str, set[str]] = {}
            for row in conn.execute("SELECT name, kb FROM grants"):
                grants.setdefault(row["name"], set()).add(row["kb"])
            return [User(r["name"], r["role"], frozenset(grants.get(r["name"], ())))
                    for r in conn.execute("SELECT name, role FROM users ORDER BY name")]

    def admins(self) -> list[User]:
        return [u for u in self.list() if u.is_admin]

    def has_password(self, name: str) -> bool:
        with self.db.read() as conn:
            row = conn and conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
            return bool(row and row["password_hash"])

    def visible(self, user: User | None, kbs: Iterable[str]) -> list[str]:
        """The knowledge bases of ``kbs`` that ``user`` may read (``None``, single-user mode: all)."""
        return [kb for kb in kbs if user is None or user.can_read(kb)]

    @staticmethod
    def _user(conn: sqlite3.Connection, name: str) -> User | None:
        row = conn.execute("SELECT name, role FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        kbs = frozenset(r["kb"] for r in conn.execute("SELECT kb FROM grants WHERE name = ?", (name,)))
        return User(row["name"], row["role"], kbs)

    def _require(self, conn: sqlite3.Connection, name: str) -> User:
        user = self._user(conn, name)
        if user is None:
            raise AuthError(f"user {name!r} does not exist; list the users with  hoprag users list")
        return user

    # ---- managing users ---------------------------------------------------------------
    def add(
        self, name: str, role: str, password: str | None = None, *, actor: str = "", source: str = ""
    ) -> tuple[User, str]:
        """Create a user with a first API key; returns (the user, the key: shown this once, never again)."""
        check_name(name)
        check_role(role)
        hashed = self._hash(password) if password is not None else None
        key_id, key, digest = api_keys.new_key()
        now = self.clock()
        with self.db.write() as conn:
            if self._user(conn, name) is not None:
                raise AuthError(f"user {name!r} already exists; change it with  hoprag users grant/passwd/keys")
            conn.execute("INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?)",
                         (name, role, hashed, now))
            conn.execute("INSERT INTO api_keys (key_id, name, label, digest, created) VALUES (?, ?, ?, ?, ?)",
                         (key_id, name, "first key", digest, now))
        self.audit.record(actor, "user_add", name, source, role=role, key_id=key_id)
        return User(name, role), key

    def remove(self, name: str, *, actor: str = "", source: str = "") -> None:
        """Delete a user with their grants and keys (the last admin cannot go)."""
        with self.db.write() as conn:
            user = self._require(conn, name)
            self._keep_an_admin(conn, user, "remove")
            conn.execute("DELETE FROM users WHERE name = ?", (name,))
        self.audit.record(actor, "user_remove", name, source, role=user.role)

    def set_role(self, name: str, role: str, *, actor: str = "", source: str = "") -> User:
        check_role(role)
        with self.db.write() as conn:
            user = self._require(conn, name)
            if role != "admin":
                self._keep_an_admin(conn, user, f"make {role}")
            conn.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))
        self.audit.record(actor, "role_set", name, source, role=role, was=user.role)
        return User(name, role, user.kbs)

    @staticmethod
    def _keep_an_admin(conn: sqlite3.Connection, user: User, what: str) -> None:
        if user.is_admin and conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0] <= 1:
            raise AuthError(f"cannot {what} {user.name!r}: it is the last admin; add another admin first "
                            "(hoprag users add NAME --admin)")

    def grant(self, name: str, kb: str, *, actor: str = "", source: str = "") -> User:
        """Let ``name`` read (editor: also write) knowledge base ``kb`` (it need not exist yet)."""
        return self._change_grant("grant", name, check_kb(kb), actor, source)

    def revoke(self, name: str, kb: str, *, actor: str = "", source: str = "") -> User:
        """Take knowledge base ``kb`` away from ``name``."""
        return self._change_grant("revoke", name, kb, actor, source)

    def _change_grant(self, action: str, name: str, kb: str, actor: str, source: str) -> User:
        sql = ("INSERT OR IGNORE INTO grants (name, kb) VALUES (?, ?)" if action == "grant"
               else "DELETE FROM grants WHERE name = ? AND kb = ?")
        with self.db.write() as conn:
            self._require(conn, name)
            conn.execute(sql, (name, kb))
            user = self._require(conn, name)
        self.audit.record(actor, action, name, source, kb=kb)
        return user

    # ---- passwords and sign-in --------------------------------------------------------
    @staticmethod
    def _hash(password: str) -> str:
        try:
            passwords.check_strength(password)
        except ValueError as exc:
            raise AuthError(str(exc)) from None
        return passwords.hash_password(password)

    def set_password(self, name: str, password: str, *, actor: str = "", source: str = "") -> None:
        hashed = self._hash(password)
        with self.db.write() as conn:
            self._require(conn, name)
            conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (hashed, name))
            self.throttle.succeeded(conn, name)
        self.audit.record(actor, "password_set", name, source)

    def sign_in(self, name: str, password: str, source: str = "", *, per_source: bool = True) -> User | None:
        """The user if ``password`` is theirs, else None (unknown name or wrong password: same answer, same time).

        Raises SignInLimited (with ``retry_after_s``) after too many wrong passwords (:mod:`.throttle`).
        ``per_source=False``: ``source`` names no client address (e.g. every UI session behind a local
        proxy looks the same), so only the per-name limit applies and one client cannot lock out everyone.
        Every attempt is audited (``sign_in``, ``sign_in_failed``, ``sign_in_limited``).
        """
        now = self.clock()
        with self.db.read() as conn:
            try:
                self.throttle.check(conn, name, source if per_source else "", now)
            except SignInLimited as exc:
                self.audit.record(name, "sign_in_limited", name, source, retry_after_s=exc.retry_after_s)
                raise
            row = conn and conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        stored = row["password_hash"] if row else None
        ok = passwords.verify(stored, password)
        if conn is not None:  # no store, no user: nothing to count failures against
            with self.db.write() as wconn:
                if ok:
                    self.throttle.succeeded(wconn, name)
                    if passwords.needs_rehash(stored):
                        wconn.execute("UPDATE users SET password_hash = ? WHERE name = ?",
                                      (passwords.hash_password(password), name))
                else:
                    self.throttle.failed(wconn, name, source, now)
        self.audit.record(name, "sign_in" if ok else "sign_in_failed", name, source)
        return self.get(name) if ok else None

    # ---- API keys ---------------------------------------------------------------------
    def new_key(self, name: str, label: str = "", *, actor: str = "", source: str = "") -> str:
        """A new API key for ``name``; returned this once (only its digest is stored)."""
        key_id, key, digest = api_keys.new_key()
        with self.db.write() as conn:
            self._require(conn, name)
            conn.execute("INSERT INTO api_keys (key_id, name, label, digest, created) VALUES (?, ?, ?, ?, ?)",
                         (key_id, name, label, digest, self.clock()))
        self.audit.record(actor, "key_new", name, source, key_id=key_id, label=label)
        return key

    def keys(self, name: str) -> list[KeyInfo]:
        """The keys of ``name`` (revoked ones too), oldest first."""
        with self.db.read() as conn:
            if conn is None:
                return []
            rows = conn.execute("SELECT key_id, name, label, created, last_used, revoked FROM api_keys "
                                "WHERE name = ? ORDER BY created, key_id", (name,)).fetchall()
        return [KeyInfo(r["key_id"], r["name"], r["label"], r["created"], r["last_used"], r["revoked"]) for r in rows]

    def revoke_key(self, name: str, key_id: str, *, actor: str = "", source: str = "") -> None:
        """Revoke a key of ``name``: it fails from the next request on."""
        with self.db.write() as conn:
            self._require(conn, name)
            done = conn.execute("UPDATE api_keys SET revoked = ? WHERE name = ? AND key_id = ? AND revoked IS NULL",
                                (self.clock(), name, key_id)).rowcount
            if not done:
                raise AuthError(f"user {name!r} has no active key {key_id!r}; list them with  hoprag users keys {name}")
        self.audit.record(actor, "key_revoke", name, source, key_id=key_id)

    def authenticate(self, api_key: str) -> User | None:
        """The user owning ``api_key`` if it is a live key (read fresh every call: a revoked key fails at once).

        The stored digest is found by the key id and compared in constant time
        (:func:`rag.auth.keys.matches`, hmac.compare_digest); a key id with no
        row still runs the comparison. Updates the key's last-used time.
        """
        key_id = api_keys.key_id_of(api_key or "")
        with self.db.read() as conn:
            row = None
            if conn is not None:
                row = conn.execute("SELECT digest, name, last_used FROM api_keys WHERE key_id = ? AND revoked IS NULL",
                                   (key_id or "",)).fetchone()
            if not api_keys.matches(api_key or "", row["digest"] if row else None):
                return None
            user = self._user(conn, row["name"])
        now = self.clock()
        if row["last_used"] is None or now - row["last_used"] >= LAST_USED_RESOLUTION_S:
            with self.db.write() as wconn:
                wconn.execute("UPDATE api_keys SET last_used = ? WHERE key_id = ?", (now, key_id))
        return user
