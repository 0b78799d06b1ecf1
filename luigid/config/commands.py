"""The plumbing of luigid's offline commands, ``luigid user`` and ``luigid state``.

Each parses its own arguments, may read luigi's config files, and ends with an exit code:
0 done, 2 bad usage or configuration, 1 anything else. A failure is one line on stderr
starting with the command's name, never a traceback. It lives beside the configuration it
reads so that the packages owning the commands (``luigid.auth.cli``, ``luigid.storage.cli``)
can both import it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO, TypeVar

from luigid.config.settings import LuigidConfig, load_config
from luigid.config.values import ConfigError

T = TypeVar("T")

EXIT_USAGE = 2
EXIT_FAILED = 1


class CommandFailed(Exception):
    """Ends the command with exit status ``code`` and the one-line message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def from_config(read: Callable[[LuigidConfig], T], overrides: Mapping[str, Any] | None = None) -> T:
    """``read`` applied to luigi's config files; a bad file or value (in reading them or in
    ``read``) fails the command as bad configuration."""
    try:
        return read(load_config(overrides=overrides))
    except ConfigError as exc:
        raise CommandFailed(EXIT_USAGE, str(exc).removeprefix("luigid: ")) from None


def run_command(
    name: str,
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    body: Callable[[argparse.Namespace], None],
    stderr: TextIO | None = None,
) -> int:
    """Parse ``argv`` (argparse reports its own usage errors) and run ``body``; the exit code.
    ``CommandFailed`` becomes the line ``<name>: <message>`` on ``stderr``."""
    try:
        opts = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        body(opts)
    except CommandFailed as exc:
        (stderr or sys.stderr).write(f"{name}: {exc}\n")
        return exc.code
    return 0
