"""The users file: one credential per line, ``name:role:credential``.

``credential`` is a password hash (``scrypt$...``) or a bearer-token hash (``token$...``);
a user may have several lines (a password and tokens) but one role. Lines starting with
``#`` and blank lines are ignored. The file is written by ``luigid user`` and read by the
server, which picks up changes without a restart.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from luigid.auth.passwords import PASSWORD_SCHEME, TOKEN_SCHEME, parse_password_hash, parse_token_hash
from luigid.core.rpc import ROLES
from luigid.storage.files import write_atomically

NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,128}")

HEADER = "# luigid users: name:role:credential (written by `luigid user`; see docs/security.md)\n"


class UsersFileError(ValueError):
    """The users file cannot be read or has a bad line; the message names file and line."""


@dataclass
class User:
    name: str
    role: str
    password_hashes: list[str] = field(default_factory=list)
    token_digests: list[str] = field(default_factory=list)


@dataclass
class Users:
    by_name: dict[str, User] = field(default_factory=dict)
    #: sha256 hex of a token -> its user
    by_token: dict[str, User] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        for user in self.by_name.values():
            for stored in user.password_hashes:
                out.append(f"{user.name}:{user.role}:{stored}\n")
            for digest in user.token_digests:
                out.append(f"{user.name}:{user.role}:{TOKEN_SCHEME}${digest}\n")
        return out


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"bad user name {name!r}: use 1-128 letters, digits and . _ @ + -")
    return name


def parse_users(content: str, path: str) -> Users:
    users = Users()
    for number, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path} line {number}"
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise UsersFileError(f"{where}: expected name:role:credential")
        name, role, credential = parts
        if not NAME.fullmatch(name):
            raise UsersFileError(f"{where}: bad user name {name!r}")
        if role not in ROLES:
            raise UsersFileError(f"{where}: unknown role {role!r} (expected one of {', '.join(ROLES)})")
        user = users.by_name.setdefault(name, User(name, role))
        if user.role != role:
            raise UsersFileError(f"{where}: user {name!r} already has role {user.role!r}")
        scheme = credential.split("$", 1)[0]
        try:
            if scheme == PASSWORD_SCHEME:
                parse_password_hash(credential)
                user.password_hashes.append(credential)
            elif scheme == TOKEN_SCHEME:
                digest = parse_token_hash(credential)
                user.token_digests.append(digest)
                users.by_token[digest] = user
            else:
                raise ValueError(f"unknown credential type {scheme!r}")
        except ValueError as exc:
            raise UsersFileError(f"{where}: {exc}") from None
    return users


def read_users(path: str) -> Users:
    try:
        with open(path, encoding="utf-8") as src:
            content = src.read()
    except OSError as exc:
        raise UsersFileError(f"cannot read users file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsersFileError(f"users file {path} is not UTF-8 text") from None
    return parse_users(content, path)


def write_users(path: str, users: Users) -> None:
    """Replace the file atomically, readable by its owner only."""
    write_atomically(path, (HEADER + "".join(users.lines())).encode("utf-8"))
    os.chmod(path, 0o600)


class UsersFile:
    """The users file as the server sees it: read at start, re-read when it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.users = read_users(path)
        self._stamp = self._stat()
        #: the problem with the newest version on disk, if it could not be loaded
        self.problem: str | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when new users were loaded. A broken new
        version keeps the old users (and is reported through ``problem``)."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.users = read_users(self.path)
        except UsersFileError as exc:
            self.problem = str(exc)
            return False
        self.problem = None
        return True
