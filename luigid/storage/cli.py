"""``luigid state``: work on a state file while the daemon is stopped.

    luigid state export --luigi OUT [--state-path IN]

writes OUT as the state file of luigi 3.x's own daemon (see ``luigid.storage.luigi_export``).
Without ``--state-path`` the ``[scheduler] state_path`` of luigi's config files is read.
Exit codes: 0 done, 2 bad usage or configuration, 1 anything else; errors are one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from luigid.config.commands import EXIT_FAILED, CommandFailed, from_config, run_command
from luigid.storage.luigi_export import ExportError, export_for_luigi


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luigid state", description="Work on luigid's state file.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export",
        help="write the state as a state file luigi's own luigid loads (to roll back to it)",
        description="Write the tasks and workers of luigid's state file (and its status journal) as a "
        "state file luigi 3.x's own luigid loads. Stop luigid first: it saves its state on the way out.",
    )
    export.add_argument("--luigi", metavar="OUT", required=True, help="the file to write for luigi's luigid")
    export.add_argument(
        "--state-path",
        metavar="IN",
        help="luigid's state file (default: [scheduler] state_path from luigi's config)",
    )
    return parser


def _export(opts: argparse.Namespace, stdout: TextIO) -> None:
    overrides = {"state_path": opts.state_path} if opts.state_path else {}
    config = from_config(lambda config: config.scheduler, overrides)
    source = config.state_path
    try:
        summary = export_for_luigi(source, opts.luigi, config)
    except ExportError as exc:
        raise CommandFailed(EXIT_FAILED, str(exc)) from None
    stdout.write(
        f"Exported {summary.tasks} tasks and {summary.workers} workers from {source} to {opts.luigi}\n"
    )


def run(argv: Sequence[str], stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    return run_command(
        "luigid state", build_parser(), argv, lambda opts: _export(opts, stdout or sys.stdout), stderr
    )


def state_main(argv: Sequence[str]) -> int:
    """``luigid state ...`` (dispatched from ``luigid.cmdline.main``)."""
    return run(argv)
