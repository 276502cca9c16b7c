"""Users, roles, per-knowledge-base grants, API keys, sign-in throttling and the audit log (issue 20).

The store lives in the data dir (``<data_dir>/users.sqlite3``, SQLite in WAL
mode) and the audit log beside it (``<data_dir>/audit.jsonl``, append-only JSON
lines). With no user defined hoprag is single-user: everything is allowed to
whoever reaches it (the server binds loopback only, see ``hoprag serve``).

Roles: ``admin`` (every knowledge base, manages users), ``editor`` (ask,
upload and delete in the knowledge bases granted), ``reader`` (ask only, in
the knowledge bases granted). Passwords are hashed with Argon2id
(argon2-cffi); API keys are random, shown once, stored as a SHA-256 digest
looked up by a key id and compared in constant time.

Modules: :mod:`.users` (the store, :class:`User`, :class:`Users`),
:mod:`.keys` (API key format and digest), :mod:`.passwords` (hashing),
:mod:`.throttle` (wrong-password limiting), :mod:`.audit` (the log),
:mod:`.db` (the SQLite file), :mod:`.ratelimit` (per-key request limit of the API).
"""

from __future__ import annotations

from rag.auth.audit import Audit
from rag.auth.errors import AuthError, SignInLimited
from rag.auth.keys import KeyInfo
from rag.auth.users import ROLES, User, Users

__all__ = ["ROLES", "Audit", "AuthError", "KeyInfo", "SignInLimited", "User", "Users"]
