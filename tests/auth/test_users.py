"""The user store (rag.auth.Users): roles and grants, passwords, sign-in limiting, API keys, stored secrets."""

from __future__ import annotations

import sqlite3

import pytest

from rag.auth import ROLES, AuthError, SignInLimited, User, Users
from rag.auth import keys as api_keys
from rag.auth.db import USERS_FILE
from rag.auth.throttle import Throttle

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(tmp_path, clock) -> Users:
    return Users(tmp_path / "data", clock=clock)


def test_no_user_is_single_user_mode_and_creates_nothing(users, tmp_path):
    assert not users.any() and users.list() == [] and users.get("x") is None
    assert users.visible(None, ["a", "b"]) == ["a", "b"]
    assert users.authenticate("hrk_000000000000_" + "x" * 43) is None
    assert users.sign_in("nobody", "whatever") is None
    assert not (tmp_path / "data" / USERS_FILE).exists()


def test_roles_and_grants_decide_reading_and_writing(users):
    assert ROLES == ("admin", "editor", "reader")
    admin, _ = users.add("root", "admin")
    users.add("ed", "editor")
    users.add("rd", "reader")
    ed = users.grant("ed", "alpha")
    rd = users.grant("rd", "alpha")
    assert users.any() and admin.is_admin and not ed.is_admin
    assert admin.can_read("anything") and admin.can_write("anything")
    assert ed.can_read("alpha") and ed.can_write("alpha") and not ed.can_read("beta") and not ed.can_write("beta")
    assert rd.can_read("alpha") and not rd.can_write("alpha") and not rd.can_read("beta")
    assert users.visible(rd, ["alpha", "beta"]) == ["alpha"] and users.visible(admin, ["alpha", "beta"]) == [
        "alpha", "beta"]
    assert users.get("rd") == User("rd", "reader", frozenset({"alpha"}))
    assert users.revoke("rd", "alpha").kbs == frozenset()
    assert users.set_role("rd", "editor").role == "editor"
    assert [u.name for u in users.list()] == ["ed", "rd", "root"]
    users.remove("rd")
    assert users.get("rd") is None and users.keys("rd") == []


def test_bad_names_roles_duplicates_and_the_last_admin_are_refused(users):
    users.add("root", "admin")
    with pytest.raises(AuthError, match="not allowed"):
        users.add("bad name", "reader")
    with pytest.raises(AuthError, match="choose one of: admin, editor, reader"):
        users.add("x", "owner")
    with pytest.raises(AuthError, match="already exists"):
        users.add("root", "reader")
    with pytest.raises(AuthError, match="last admin"):
        users.remove("root")
    with pytest.raises(AuthError, match="last admin"):
        users.set_role("root", "reader")
    with pytest.raises(AuthError, match="does not exist"):
        users.grant("ghost", "alpha")
    with pytest.raises(AuthError, match="knowledge base name"):
        users.grant("root", "../etc")
    with pytest.raises(AuthError, match="at least 8"):
        users.set_password("root", "short")


def test_sign_in_checks_the_password_and_audits(users):
    users.add("ann", "reader", PASSWORD)
    assert users.sign_in("ann", PASSWORD, source="10.0.0.7") == User("ann", "reader")
    assert users.sign_in("ann", "wrong password") is None
    assert users.sign_in("nobody", PASSWORD) is None
    users.add("nopw", "reader")  # no password: API keys only
    assert users.sign_in("nopw", "") is None
    actions = [(r["action"], r["target"], r["source"]) for r in users.audit.read(action=None) if "sign_in" in r["action"]]
    assert actions[:3] == [("sign_in", "ann", "10.0.0.7"), ("sign_in_failed", "ann", ""), ("sign_in_failed", "nobody", "")]


def test_wrong_passwords_are_rate_limited_until_the_window_passes(users, clock):
    users.add("ann", "reader", PASSWORD)
    for _ in range(Throttle().max_per_name):
        assert users.sign_in("ann", "wrong password", source="10.0.0.9") is None
        clock.now += 1
    with pytest.raises(SignInLimited) as limited:
        users.sign_in("ann", PASSWORD, source="10.0.0.9")  # even the right password waits
    assert 0 < limited.value.retry_after_s <= Throttle().window_s
    assert "try again in" in str(limited.value)
    assert users.audit.read(action="sign_in_limited")
    clock.now += Throttle().window_s
    assert users.sign_in("ann", PASSWORD) is not None  # the window passed
    # a success clears the count: five more wrong ones are needed to be limited again
    for _ in range(Throttle().max_per_name - 1):
        users.sign_in("ann", "wrong password")
    assert users.sign_in("ann", PASSWORD) is not None


def test_many_names_from_one_address_are_limited_too(tmp_path, clock):
    users = Users(tmp_path, throttle=Throttle(max_per_name=5, max_per_source=3), clock=clock)
    users.add("real", "reader", PASSWORD)
    for name in ("a1", "a2", "a3"):  # names that do not exist count too
        assert users.sign_in(name, "guess", source="10.1.1.1") is None
    with pytest.raises(SignInLimited):
        users.sign_in("real", PASSWORD, source="10.1.1.1")
    assert users.sign_in("real", PASSWORD, source="10.2.2.2") is not None


def test_a_source_without_an_address_is_not_limited_as_one_client(tmp_path, clock):
    """UI sessions with no client address (localhost, a local proxy) share one source: only per-name limits apply."""
    users = Users(tmp_path, throttle=Throttle(max_per_name=5, max_per_source=3), clock=clock)
    users.add("real", "reader", password=PASSWORD)
    for name in ("a", "b", "c", "d"):
        assert users.sign_in(name, "guess", source="web localhost", per_source=False) is None
    assert users.sign_in("real", PASSWORD, source="web localhost", per_source=False) is not None


def test_api_keys_authenticate_until_revoked_and_record_last_use(users, clock):
    _, first = users.add("ann", "editor")
    users.grant("ann", "alpha")
    assert users.authenticate(first) == User("ann", "editor", frozenset({"alpha"}))
    second = users.new_key("ann", label="ci")
    info = {k.key_id: k for k in users.keys("ann")}
    assert len(info) == 2 and info[api_keys.key_id_of(first)].last_used == clock.now
    assert info[api_keys.key_id_of(second)].label == "ci" and info[api_keys.key_id_of(second)].last_used is None
    users.revoke_key("ann", api_keys.key_id_of(first))
    assert users.authenticate(first) is None  # at once
    assert users.authenticate(second) is not None
    assert not {k.key_id: k for k in users.keys("ann")}[api_keys.key_id_of(first)].active
    with pytest.raises(AuthError, match="no active key"):
        users.revoke_key("ann", api_keys.key_id_of(first))
    # a key with the right id but another secret, a malformed key, a removed user's key
    assert users.authenticate(second[:-4] + ("AAAA" if not second.endswith("AAAA") else "BBBB")) is None
    assert users.authenticate("") is None and users.authenticate("Bearer nonsense") is None
    users.add("root", "admin")
    users.remove("ann")
    assert users.authenticate(second) is None


def test_key_checks_compare_digests_in_constant_time(users, monkeypatch):
    """Whatever part of a key is right (none, the id, all), the check runs hmac.compare_digest on two digests."""
    _, key = users.add("ann", "reader")
    calls: list[tuple[bytes, bytes]] = []
    real = api_keys.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", spy)
    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    unknown_id = "hrk_ffffffffffff_" + key.split("_", 2)[2]
    for presented, expected in ((key, True), (wrong_secret, False), (unknown_id, False), ("garbage", False)):
        calls.clear()
        assert (users.authenticate(presented) is not None) is expected
        assert len(calls) == 1 and all(len(x) == 32 for x in calls[0]), presented


def test_the_store_holds_no_password_or_key_in_clear(users, tmp_path):
    _, key1 = users.add("ann", "admin", PASSWORD)
    key2 = users.new_key("ann")
    users.set_password("ann", PASSWORD + "2")
    users.sign_in("ann", PASSWORD + "2")
    secrets_ = [PASSWORD, PASSWORD + "2", key1, key2] + [k.split("_", 2)[2] for k in (key1, key2)]
    files = sorted((tmp_path / "data").glob(f"{USERS_FILE}*")) + [tmp_path / "data" / "audit.jsonl"]
    assert files and all(f.exists() for f in files)
    for f in files:
        raw = f.read_bytes()
        for s in secrets_:
            assert s.encode() not in raw, (f.name, s[:6])
    conn = sqlite3.connect(tmp_path / "data" / USERS_FILE)
    rows = conn.execute("SELECT * FROM users").fetchall() + conn.execute("SELECT * FROM api_keys").fetchall()
    text = repr(rows)
    assert all(s not in text for s in secrets_)
    assert conn.execute("SELECT password_hash FROM users").fetchone()[0].startswith("$argon2id$")
    conn.close()
