"""``luigid``: parse luigi's flags, build the configuration once, start the server.

Exit codes: 0 after a clean shutdown, 2 for a bad flag or configuration, 3 when the server
cannot start (address in use, state path unusable, already running). Every failure is one
line on stderr; with ``--background`` the launching process waits until the daemon listens
and reports its failure (see ``luigid.daemon``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from luigid import __version__, daemon
from luigid.config import ConfigError, LuigidConfig, load_config
from luigid.logs import slow_request_seconds
from luigid.runtime.limits import server_limits_from

EXIT_CONFIG = 2
EXIT_STARTUP = 3

logger = logging.getLogger("luigi.server")

DEFAULT_STATE_PATH = "/var/lib/luigi-server/state.pickle"

EPILOG = """\
configuration:
  Settings are read as luigi reads them: /etc/luigi/client.cfg, /etc/luigi/luigi.cfg,
  ./client.cfg, ./luigi.cfg, then the file named by LUIGI_CONFIG_PATH (TOML when it ends
  in .toml or LUIGI_CONFIG_PARSER=toml). Sections used: [scheduler], [resources], [cors],
  [core] (logging), and those of the optional features. See luigi.cfg.example.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luigid",
        description="Central scheduler for luigi workers: a drop-in replacement for luigi's luigid.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--background", action="store_true", help="detach and run as a daemon")
    parser.add_argument(
        "--pidfile",
        help="write the pid to this file (removed at exit); refuse to start while it names a running luigid",
    )
    parser.add_argument("--logdir", help="log directory (default with --background: /var/log/luigi)")
    parser.add_argument("--state-path", help="state file (overrides [scheduler] state_path)")
    parser.add_argument("--address", help="interface to listen on (default: all)")
    parser.add_argument("--unix-socket", help="listen on this Unix socket instead of TCP")
    parser.add_argument("--port", type=int, default=8082, help="TCP port to listen on (default: 8082)")
    parser.add_argument("--version", action="version", version=f"luigid {__version__}")
    return parser


def fail(code: int, message: str) -> int:
    prefix = "" if message.startswith("luigid:") else "luigid: "
    print(f"{prefix}{message}", file=sys.stderr)
    return code


def resolve_state_path(config: LuigidConfig, explicit: bool) -> tuple[str | None, str | None]:
    """(usable path, problem). The built-in default falls back to a per-user file when the
    system folder is not writable, so ``luigid`` starts for a non-root user; a path the
    operator chose is never second-guessed."""
    from luigid.storage.statefile import check_writable

    path = config.scheduler.state_path
    problem = check_writable(path)
    if problem is None:
        return path, None
    if explicit or path != DEFAULT_STATE_PATH:
        return None, (
            f"state path {path} is unusable: {problem}; point --state-path (or [scheduler] state_path) "
            "at a writable file"
        )
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    fallback = os.path.join(base, "luigid", "state.pickle")
    logger.warning(
        "Default state path %s is not writable (%s); using %s instead. Set --state-path to choose.",
        path,
        problem,
        fallback,
    )
    return fallback, None


def luigid(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    code = main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        sys.exit(code)
    return code


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "user":  # `luigid user ...` manages the users file (luigid.auth)
        from luigid.auth.cli import users_main

        return users_main(argv[1:])
    if argv and argv[0] == "state":  # `luigid state export ...` converts the state file (luigid.storage)
        from luigid.storage.cli import state_main

        return state_main(argv[1:])
    opts = build_parser().parse_args(list(argv))
    overrides = {"state_path": opts.state_path} if opts.state_path else {}
    try:
        config = load_config(overrides=overrides)
        slow_request_seconds(config)  # validated before detaching, used by serve()
        server_limits_from(config.sections)  # likewise, used by the server at start
    except ConfigError as exc:
        return fail(EXIT_CONFIG, str(exc))
    if opts.pidfile:
        try:
            daemon.check_pidfile(opts.pidfile)
        except daemon.AlreadyRunning as exc:
            return fail(EXIT_STARTUP, str(exc))
    if opts.background:
        logdir = opts.logdir or daemon.DEFAULT_LOGDIR
        return daemon.detach(logdir, lambda report: start(config, opts, report, logdir=logdir))
    return start(config, opts, daemon.StartupReport(), logdir=opts.logdir)


def start(
    config: LuigidConfig, opts: argparse.Namespace, report: daemon.StartupReport, logdir: str | None
) -> int:
    """Everything from logging set-up to serving; in the daemon itself with --background."""
    from luigid import logs

    try:
        logs.configure(config, logdir=logdir, background=opts.background)
    except ConfigError as exc:
        return report.failed(EXIT_CONFIG, str(exc))
    except OSError as exc:
        return report.failed(EXIT_STARTUP, f"cannot log to {logdir}: {exc.strerror or exc}")
    for path in config.files:
        logger.info("Read configuration from %s", path)
    for warning in config.warnings:
        logger.warning("%s", warning)

    state_path, problem = resolve_state_path(config, explicit=bool(opts.state_path))
    if problem is not None or state_path is None:
        return report.failed(EXIT_STARTUP, problem or "no state path")
    if not opts.pidfile:
        return serve(config, state_path, opts, report)
    try:
        daemon.claim_pidfile(opts.pidfile)
    except daemon.AlreadyRunning as exc:
        return report.failed(EXIT_STARTUP, str(exc))
    except OSError as exc:
        return report.failed(EXIT_STARTUP, f"cannot write pidfile {opts.pidfile}: {exc.strerror or exc}")
    try:
        return serve(config, state_path, opts, report)
    finally:
        daemon.remove_pidfile(opts.pidfile)


def serve(
    config: LuigidConfig, state_path: str, opts: argparse.Namespace, report: daemon.StartupReport
) -> int:
    from dataclasses import replace

    from luigid.runtime.server import EXIT_NOT_SAVED, StartupError, run
    from luigid.scheduler import Scheduler
    from luigid.storage.statefile import StateFileError

    config = replace(config, scheduler=replace(config.scheduler, state_path=state_path))
    try:
        os.makedirs(os.path.dirname(os.path.abspath(state_path)), exist_ok=True)
    except OSError as exc:
        return report.failed(EXIT_STARTUP, f"cannot create the folder of {state_path}: {exc.strerror or exc}")
    pidfile = opts.pidfile
    try:
        server = run(
            api_port=opts.port,
            address=opts.address,
            unix_socket=opts.unix_socket,
            scheduler=Scheduler(config),
            ready=lambda server: report.ready(),
            slow_request_seconds=slow_request_seconds(config),
            on_forced_exit=(lambda: daemon.remove_pidfile(pidfile)) if pidfile else None,
        )
    except (StartupError, StateFileError) as exc:
        return report.failed(EXIT_STARTUP, str(exc))
    return 0 if server.save_error is None else EXIT_NOT_SAVED
