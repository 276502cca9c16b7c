"""``hoprag users`` and ``hoprag audit``: the ``users add --json`` contract, grants, passwords, keys, removal,
``HOPRAG_DATA_DIR`` and ``--data-dir``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rag.auth import Users
from rag.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, app

HOPRAG = [sys.executable, "-c", "from rag.cli import main; main()"]


@pytest.fixture
def data(monkeypatch, tmp_path):
    """A fresh data dir named by HOPRAG_DATA_DIR (no other hoprag setting in the environment)."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("HOPRAG_")]:
        monkeypatch.delenv(key)
    path = tmp_path / "data"
    monkeypatch.setenv("HOPRAG_DATA_DIR", str(path))
    return path


def cli(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


def test_users_add_json_prints_one_object_with_the_key_shown_once(data):
    res = cli("users", "add", "alice", "--admin", "--json")
    assert res.exit_code == EXIT_OK, res.output
    out = json.loads(res.stdout)  # exactly one JSON object on stdout, nothing else
    assert {"user", "role", "api_key"} <= set(out) and (out["user"], out["role"]) == ("alice", "admin")
    assert Users(data).authenticate(out["api_key"]).name == "alice"
    reader = json.loads(cli("users", "add", "bob", "--role", "reader", "--json").stdout)
    assert reader["role"] == "reader" and reader["api_key"] != out["api_key"]
    listed = json.loads(cli("users", "list", "--json").stdout)
    assert out["api_key"] not in json.dumps(listed)
    assert [(u["user"], u["role"], u["keys"]) for u in listed["users"]] == [("alice", "admin", 1), ("bob", "reader", 1)]


def test_the_json_contract_in_a_real_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPRAG_")}
    env["HOPRAG_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([*HOPRAG, "users", "add", "ops", "--role", "editor", "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    out = json.loads(done.stdout)
    assert (out["user"], out["role"]) == ("ops", "editor") and out["api_key"].startswith("hrk_")
    grant = subprocess.run([*HOPRAG, "users", "grant", "ops", "handbook"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert grant.returncode == 0 and Users(tmp_path / "data").get("ops").kbs == {"handbook"}


def test_role_is_required_and_must_agree_with_admin(data):
    assert cli("users", "add", "x").exit_code == EXIT_USAGE
    assert cli("users", "add", "x", "--admin", "--role", "reader").exit_code == EXIT_USAGE
    bad = cli("users", "add", "x", "--role", "owner")
    assert bad.exit_code == EXIT_ERROR and "admin, editor, reader" in bad.stderr
    assert not Users(data).any()  # nothing was created: no default user, no default password


def test_grant_revoke_role_passwd_keys_and_remove(data):
    cli("users", "add", "root", "--admin", "--json")
    first = json.loads(cli("users", "add", "ann", "--role", "editor", "--password-stdin", "--json",
                           stdin="first password\n").stdout)
    users = Users(data)
    assert users.sign_in("ann", "first password") is not None
    assert cli("users", "grant", "ann", "alpha").exit_code == EXIT_OK
    assert cli("users", "grant", "ann", "beta").exit_code == EXIT_OK
    assert cli("users", "revoke", "ann", "alpha").exit_code == EXIT_OK
    assert users.get("ann").kbs == {"beta"}
    assert cli("users", "role", "ann", "reader").exit_code == EXIT_OK and users.get("ann").role == "reader"
    assert cli("users", "passwd", "ann", "--password-stdin", stdin="second password\n").exit_code == EXIT_OK
    assert users.sign_in("ann", "first password") is None and users.sign_in("ann", "second password")

    made = json.loads(cli("users", "keys", "ann", "--new", "--label", "ci", "--json").stdout)
    assert users.authenticate(made["api_key"]).name == "ann"
    keys = json.loads(cli("users", "keys", "ann", "--json").stdout)["keys"]
    assert len(keys) == 2 and all("api_key" not in k and "digest" not in k for k in keys)
    first_id = next(k["key_id"] for k in keys if k["label"] != "ci")
    assert cli("users", "keys", "ann", "--revoke", first_id).exit_code == EXIT_OK
    assert users.authenticate(first["api_key"]) is None and users.authenticate(made["api_key"]) is not None
    assert cli("users", "keys", "ann", "--revoke", first_id).exit_code == EXIT_ERROR

    last = cli("users", "remove", "root")
    assert last.exit_code == EXIT_ERROR and "last admin" in last.stderr
    assert cli("users", "remove", "ann").exit_code == EXIT_OK and users.get("ann") is None
    missing = cli("users", "grant", "ann", "alpha")
    assert missing.exit_code == EXIT_ERROR and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr


def test_audit_command_reads_the_log_with_filters(data):
    cli("users", "add", "root", "--admin")
    cli("users", "add", "ann", "--role", "reader")
    cli("users", "grant", "ann", "alpha")
    records = json.loads(cli("audit", "--json").stdout)["records"]
    assert [r["action"] for r in records] == ["user_add", "user_add", "grant"]
    assert all(r["actor"].startswith("cli:") and r["source"].startswith("cli@") for r in records)
    grants = json.loads(cli("audit", "--action", "grant", "--since", "1h", "--json").stdout)["records"]
    assert [(r["target"], r["kb"]) for r in grants] == [("ann", "alpha")]
    assert json.loads(cli("audit", "--user", "nobody", "--json").stdout)["records"] == []
    text = cli("audit")
    assert text.exit_code == EXIT_OK and "grant  ann" in text.stdout
    bad = cli("audit", "--since", "yesterday")
    assert bad.exit_code == EXIT_ERROR and "24h" in bad.stderr


def test_data_dir_flag_wins_over_the_environment(data, tmp_path):
    other = tmp_path / "other"
    assert cli("users", "add", "zed", "--role", "reader", "--data-dir", str(other)).exit_code == EXIT_OK
    assert Users(other).get("zed") is not None and not Users(data).any()
    assert json.loads(cli("users", "list", "--json", "--data-dir", str(other)).stdout)["users"][0]["user"] == "zed"
