"""``luigid user``: the users file of salted password hashes and bearer tokens."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from luigid.auth.passwords import hash_password, parse_password_hash, token_digest, verify_password
from luigid.auth.users import UsersFileError, parse_users, read_users
from tests.support.cli import luigid_tool


def luigid_user(
    *args: str, stdin: str = "", cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return luigid_tool("user", *args, stdin=stdin, cwd=cwd, env=env)


def test_add_list_remove(tmp_path: Path) -> None:
    users = tmp_path / "users"
    added = luigid_user("add", "ada", "--role", "admin", "--users-file", str(users), stdin="correct horse\n")
    assert added.returncode == 0, added.stderr
    assert "ada (admin)" in added.stdout
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    content = users.read_text()
    assert "correct horse" not in content
    user = read_users(str(users)).by_name["ada"]
    assert user.role == "admin" and verify_password("correct horse", user.password_hashes[0])

    token = luigid_user("add", "dash", "--role", "viewer", "--token", "--users-file", str(users))
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip()
    assert secret.startswith("lgd_") and "shown only once" in token.stderr
    assert secret not in users.read_text()
    assert read_users(str(users)).by_token[token_digest(secret)].name == "dash"

    listed = luigid_user("list", "--users-file", str(users))
    assert listed.stdout.splitlines() == ["ada\tadmin\tpassword", "dash\tviewer\t1 token(s)"]

    # a new password and role replace the old ones
    assert (
        luigid_user(
            "add", "ada", "--role", "worker", "--users-file", str(users), stdin="battery staple\n"
        ).returncode
        == 0
    )
    user = read_users(str(users)).by_name["ada"]
    assert user.role == "worker" and len(user.password_hashes) == 1
    assert verify_password("battery staple", user.password_hashes[0])

    removed = luigid_user("remove", "dash", "--users-file", str(users))
    assert removed.returncode == 0
    assert set(read_users(str(users)).by_name) == {"ada"}
    assert read_users(str(users)).by_token == {}


def test_users_file_from_config(tmp_path: Path) -> None:
    users = tmp_path / "from-config"
    cfg = tmp_path / "luigi.cfg"
    cfg.write_text(f"[auth]\nenabled = true\nusers_file = {users}\n")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(cfg))
    done = luigid_user("add", "wes", "--role", "worker", stdin="worker-pass\n", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wes" in read_users(str(users)).by_name


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "bad name", "--role", "admin"], "long enough\n", "bad user name 'bad name'"),
        (["add", "ada", "--role", "admin"], "short\n", "at least 8 characters"),
        (["add", "ada", "--role", "root"], "", "invalid choice: 'root'"),
        (["remove", "ghost"], "", "no user 'ghost'"),
    ],
)
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], stdin: str, message: str) -> None:
    users = tmp_path / "users"
    users.write_text("")
    done = luigid_user(*args, "--users-file", str(users), stdin=stdin)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_no_users_file_anywhere(tmp_path: Path) -> None:
    (tmp_path / "empty.cfg").write_text("[core]\n")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(tmp_path / "empty.cfg"))
    done = luigid_user("list", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "luigid user: no users file: pass --users-file or set [auth] users_file"
    env["LUIGI_CONFIG_PATH"] = str(tmp_path / "missing.cfg")
    done = luigid_user("list", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("luigid user: config error in LUIGI_CONFIG_PATH")


def test_hashes_are_salted() -> None:
    first, second = hash_password("same password"), hash_password("same password")
    assert first != second
    assert parse_password_hash(first)[3] != parse_password_hash(second)[3]
    assert verify_password("same password", first) and verify_password("same password", second)
    assert not verify_password("same password ", first)
    assert not verify_password("x", "scrypt$garbage")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("ada", "expected name:role:credential"),
        ("a da:admin:token$" + "0" * 64, "bad user name"),
        ("ada:root:token$" + "0" * 64, "unknown role 'root'"),
        ("ada:admin:md5$abc", "unknown credential type 'md5'"),
        ("ada:admin:token$xyz", "not a token$<sha256 hex> entry"),
        ("ada:admin:scrypt$3$8$1$AAAA$AAAA", "scrypt parameters out of range"),
    ],
)
def test_bad_users_file_lines(line: str, problem: str) -> None:
    with pytest.raises(UsersFileError) as raised:
        parse_users(f"# comment\n\n{line}\n", "users.txt")
    assert str(raised.value).startswith("users.txt line 3: ")
    assert problem in str(raised.value)


def test_one_role_per_user() -> None:
    token = "token$" + "1" * 64
    with pytest.raises(UsersFileError, match="already has role 'admin'"):
        parse_users(f"ada:admin:{token}\nada:viewer:{token}\n", "users.txt")
