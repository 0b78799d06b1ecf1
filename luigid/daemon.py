"""Running as a daemon: the pidfile, and ``--background`` detaching that still reports.

The launching process must learn whether the daemon really started (systemd's
``Type=forking`` and init scripts trust its exit code), so it forks before detaching and
waits on a pipe. The detached daemon writes one line into that pipe: ``ok <pid>`` once it
listens, or ``error <exit code> <message>`` when it cannot start.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import traceback
from collections.abc import Callable

from luigid.storage.files import temporary_path

DEFAULT_LOGDIR = "/var/log/luigi"
#: folders luigid creates for its pidfile and logs: owner writes, everyone may read
FOLDER_MODE = 0o755
PIDFILE_MODE = 0o644


class AlreadyRunning(Exception):
    """The pidfile names a live luigid."""


# ---------------------------------------------------------------------------- pidfile


def read_pid(path: str) -> int | None:
    try:
        with open(path) as src:
            return int(src.read().strip())
    except (OSError, ValueError):
        return None


def is_luigid(pid: int) -> bool:
    """Whether ``pid`` is a live luigid (ours or luigi's). A pid reused by some other
    program after a crash does not count, so its pidfile is stale."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as src:
            cmdline = src.read()
    except OSError:
        return True  # no /proc to ask: a live pid has to be taken at its word
    return b"luigid" in cmdline


def check_pidfile(path: str) -> None:
    """Raise ``AlreadyRunning`` when ``path`` names a live luigid other than this process."""
    pid = read_pid(path)
    if pid is not None and pid != os.getpid() and is_luigid(pid):
        raise AlreadyRunning(f"already running (pid {pid}, from pidfile {path})")


def claim_pidfile(path: str) -> None:
    """Write this process's pid to ``path``, replacing a stale file but never a live one.

    The file is linked into place, so two daemons starting at once cannot both win.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=FOLDER_MODE, exist_ok=True)
    tmp = temporary_path(path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PIDFILE_MODE)
    try:
        os.fchmod(fd, PIDFILE_MODE)  # whatever the umask says
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        for _ in range(3):
            try:
                os.link(tmp, path)
                return
            except FileExistsError:
                check_pidfile(path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # stale: its process is gone
            except OSError:
                os.replace(tmp, path)  # a filesystem without hard links
                return
        raise AlreadyRunning(f"pidfile {path} keeps reappearing; is another luigid starting?")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def remove_pidfile(path: str) -> None:
    """Remove ``path`` if it still names this process."""
    if read_pid(path) == os.getpid():
        with contextlib.suppress(OSError):
            os.unlink(path)


# ------------------------------------------------------------------- start-up report


class StartupReport:
    """How start-up went, told once: to the launching process when there is one (``fd``),
    and on stderr (the terminal, or the ``.err`` file of a background daemon)."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = fd

    def ready(self) -> None:
        self._send(f"ok {os.getpid()}")

    def failed(self, code: int, message: str) -> int:
        line = " ".join(message.split())
        if not line.startswith("luigid:"):
            line = f"luigid: {line}"
        print(line, file=sys.stderr, flush=True)
        self._send(f"error {code} {line}")
        return code

    def _send(self, line: str) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.write(fd, line.encode("utf-8", "replace") + b"\n")
        except OSError:
            pass  # the launcher is gone; nobody is waiting
        finally:
            os.close(fd)


def parse_report(raw: bytes, unheard: str) -> tuple[int, str | None]:
    """(exit code, error line or None) from what the daemon wrote; ``unheard`` when it died silent."""
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("ok"):
        return 0, None
    if text.startswith("error "):
        code, _, message = text[len("error ") :].partition(" ")
        try:
            return int(code), message
        except ValueError:
            return 1, text
    return 1, unheard


# ------------------------------------------------------------------------- detaching


def log_paths(logdir: str, today: datetime.date | None = None) -> tuple[str, str]:
    """The date-stamped files that receive the daemon's stdout and stderr."""
    day = today or datetime.date.today()
    stem = os.path.join(logdir, f"luigi-server-{day:%Y-%m-%d}")
    return f"{stem}.out", f"{stem}.err"


def detach(logdir: str, work: Callable[[StartupReport], int]) -> int:
    """Run ``work`` in a detached daemon; return the exit code the launcher should use.

    ``work`` must call ``report.ready()`` once it listens, or ``report.failed(...)``.
    """
    import daemon  # python-daemon

    try:
        os.makedirs(logdir, mode=FOLDER_MODE, exist_ok=True)
        out_path, err_path = log_paths(logdir)
        out = open(out_path, "a+")  # noqa: SIM115 - handed over to the daemon
        err = open(err_path, "a+")  # noqa: SIM115
    except OSError as exc:
        print(f"luigid: cannot use log directory {logdir}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the daemon, which leaves through os._exit
        os.close(read_end)
        report = StartupReport(write_end)
        code = 1
        try:
            context = daemon.DaemonContext(
                working_directory=".",
                umask=0o022,
                detach_process=True,
                files_preserve=[write_end],
                stdout=out,
                stderr=err,
                # leave SIGTERM alone: the server installs its own graceful handler
                signal_map={signal.SIGTTIN: None, signal.SIGTTOU: None, signal.SIGTSTP: None},
            )
            with context:
                code = work(report)
        except BaseException as exc:
            traceback.print_exc()  # into the .err file: this is a bug, keep the details
            code = report.failed(1, f"daemon failed: {type(exc).__name__}: {exc}")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    out.close()
    err.close()
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while chunk := pipe.read(4096):
            chunks.append(chunk)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    code, message = parse_report(b"".join(chunks), f"the daemon exited during start-up; see {err_path}")
    if message is not None:
        print(message if message.startswith("luigid:") else f"luigid: {message}", file=sys.stderr)
    return code
