"""``luigid user``: manage the users file.

    luigid user add NAME --role worker [--users-file F]   password from stdin or a prompt
    luigid user add NAME --role viewer --token            prints a new bearer token once
    luigid user remove NAME
    luigid user list

Without ``--users-file`` the ``[auth] users_file`` of luigi's config files is used.
Exit codes: 0 done, 2 bad usage or configuration, 1 anything else; errors are one line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from luigid.auth.passwords import hash_password, new_token, token_digest
from luigid.auth.users import User, Users, UsersFileError, check_name, read_users, write_users
from luigid.config.commands import EXIT_FAILED, EXIT_USAGE, CommandFailed, from_config, run_command
from luigid.core.rpc import ROLES

#: Shortest password accepted (luigi workers put it in the scheduler URL: long random ones are best).
MIN_PASSWORD_LENGTH = 8


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luigid user", description="Manage luigid's users file.")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a user, or change a user's password or role")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--token", action="store_true", help="create a bearer token instead of a password")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (the default when stdin is not a terminal)",
    )
    remove = commands.add_parser("remove", help="remove a user and all their credentials")
    remove.add_argument("name")
    commands.add_parser("list", help="list users and their roles")
    for sub in (add, remove, commands.choices["list"]):
        sub.add_argument(
            "--users-file", help="the users file (default: [auth] users_file from luigi's config)"
        )
    return parser


def _users_file(given: str | None) -> str:
    if given:
        return given
    from luigid.auth.config import auth_config_from

    configured = from_config(lambda config: auth_config_from(config.sections).users_file)
    if not configured:
        raise CommandFailed(EXIT_USAGE, "no users file: pass --users-file or set [auth] users_file")
    return configured


def _load(path: str, must_exist: bool) -> Users:
    if not os.path.exists(path) and not must_exist:
        return Users()
    try:
        return read_users(path)
    except UsersFileError as exc:
        raise CommandFailed(EXIT_FAILED, str(exc)) from None


def _read_password(from_stdin: bool, stdin: TextIO) -> str:
    if from_stdin or not stdin.isatty():
        password = stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CommandFailed(EXIT_FAILED, "the passwords differ")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CommandFailed(EXIT_FAILED, f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _save(path: str, users: Users) -> None:
    try:
        write_users(path, users)
    except OSError as exc:
        raise CommandFailed(EXIT_FAILED, f"cannot write users file {path}: {exc.strerror or exc}") from None


def _add(opts: argparse.Namespace, path: str, stdin: TextIO, stdout: TextIO) -> None:
    try:
        name = check_name(opts.name)
    except ValueError as exc:
        raise CommandFailed(EXIT_USAGE, str(exc)) from None
    users = _load(path, must_exist=False)
    user = users.by_name.setdefault(name, User(name, opts.role))
    changed_role = user.role != opts.role
    user.role = opts.role
    if opts.token:
        token = new_token()
        user.token_digests.append(token_digest(token))
        _save(path, users)
        stdout.write(f"{token}\n")
        sys.stderr.write(f"Added a bearer token for {name} ({opts.role}) to {path}; it is shown only once.\n")
        return
    user.password_hashes = [hash_password(_read_password(opts.password_stdin, stdin))]
    _save(path, users)
    note = " (role changed)" if changed_role else ""
    stdout.write(f"Set the password of {name} ({opts.role}) in {path}{note}\n")


def _command(opts: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    path = _users_file(opts.users_file)
    if opts.command == "add":
        _add(opts, path, stdin, stdout)
    elif opts.command == "remove":
        users = _load(path, must_exist=True)
        if users.by_name.pop(opts.name, None) is None:
            raise CommandFailed(EXIT_FAILED, f"no user {opts.name!r} in {path}")
        users.by_token = {d: u for d, u in users.by_token.items() if u.name != opts.name}
        _save(path, users)
        stdout.write(f"Removed {opts.name} from {path}\n")
    else:
        for user in _load(path, must_exist=True).by_name.values():
            kinds = ["password"] * bool(user.password_hashes) + [
                f"{len(user.token_digests)} token(s)"
            ] * bool(user.token_digests)
            stdout.write(f"{user.name}\t{user.role}\t{', '.join(kinds) or 'no credentials'}\n")


def run(argv: Sequence[str], stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    return run_command(
        "luigid user",
        build_parser(),
        argv,
        lambda opts: _command(opts, stdin or sys.stdin, stdout or sys.stdout),
    )


def users_main(argv: Sequence[str]) -> int:
    """``luigid user ...`` (dispatched from ``luigid.cmdline.main``)."""
    return run(argv)
