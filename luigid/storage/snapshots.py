"""Periodic snapshots of the state while the server runs, written by a forked child.

The parent only pays for ``fork()``; the child pickles its frozen copy of memory straight
into the file (``luigid.storage.codec.encode_into``, through
``luigid.storage.files.write_atomically``) and exits, reporting through a pipe. The
journal is rotated at the moment of the fork, so the snapshot covers exactly the
generations before it, and their files are deleted only once the child reports success.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable

from luigid.core import gcpause
from luigid.core.state import State
from luigid.storage.codec import StateFileError, encode_into
from luigid.storage.files import temporary_path, write_atomically
from luigid.storage.statefile import Generations, save_state

logger = logging.getLogger("luigi.server")

#: How much lower the snapshot child's CPU priority is than the server's.
CHILD_NICENESS = 10

#: Writes one snapshot, in the forked child: (state, log generation covered, a check that
#: raises once the server that asked for it has gone). The default writes the state file.
Sink = Callable[[State, "int | None", Callable[[], None]], None]


class Snapshotter:
    """Takes a snapshot every ``interval`` seconds while the server runs.

    ``tick()`` is called on the event loop (often, it is cheap): it reaps a finished
    snapshot child without blocking and starts the next one when due. With ``fork`` the
    loop pauses only for ``fork()`` itself; without it (or where fork is missing) the
    snapshot is written inline.
    """

    def __init__(
        self,
        state: State,
        path: str,
        interval: float,
        fork: bool = True,
        journal: Generations | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.state = state
        #: where the child writes (``path``, the state file, by default)
        self.sink: Sink = sink or (
            lambda state, generation, check: write_atomically(
                path, lambda out: encode_into(out, state, generation), before_replace=check
            )
        )
        self.path = path
        self.interval = interval
        self.fork = fork and hasattr(os, "fork")
        #: status changes after each snapshot; its files are deleted once a snapshot covers them
        self.journal = journal
        # pid, pipe to read, start time, journal generation covered
        self._child: tuple[int, int, float, int | None] | None = None
        self._last = time.monotonic()
        #: outcome of the most recent snapshot: None (none yet), "" (saved) or the error
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    @property
    def tick_ms(self) -> float:
        return max(50.0, min(self.interval, 1.0) * 1000)

    @property
    def writing(self) -> bool:
        """A snapshot child is still at work."""
        return self._child is not None

    def tick(self, hold: bool = False) -> None:
        """``hold``: a snapshot is due but must wait (the server holds it during a prune
        round: with a child alive, every page the round frees is copied first)."""
        self._reap(block=False)
        if self._child is None and not hold and time.monotonic() - self._last >= self.interval:
            self.take()

    def take(self) -> None:
        self._last = time.monotonic()
        if not self.fork:
            try:
                save_state(self.state, self.path, self.journal)
                self.last_error = ""
            except Exception as exc:
                self._failed(str(exc))
            return
        # the fork is the loop's longest pause at 1M tasks (~20 ms of CPU per GB of RSS): no
        # collection started by an allocation here may add to it
        with gcpause.paused():
            generation = self.journal.rotate() if self.journal is not None else None
            read_end, write_end = os.pipe()
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which leaves through os._exit
                os.close(read_end)
                _snapshot_child(self.state, self.sink, write_end, parent, generation)
        os.close(write_end)
        self._child = (pid, read_end, time.monotonic(), generation)

    def stop(self) -> None:
        """Before the final save: a snapshot still being written is older, so drop it."""
        if self._child is None:
            return
        pid = self._child[0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._reap(block=True)
        with contextlib.suppress(OSError):
            os.unlink(temporary_path(self.path, pid))

    def _reap(self, block: bool) -> None:
        if self._child is None:
            return
        pid, read_end, started, generation = self._child
        try:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1 << 8
        if done == 0:
            return
        self._child = None
        with os.fdopen(read_end, "rb") as pipe:
            report = pipe.read().decode("utf-8", "replace").strip()
        if os.waitstatus_to_exitcode(status) == 0 and report == "ok":
            self.last_error = ""
            logger.debug("Snapshot saved in %s (%.2fs)", self.path, time.monotonic() - started)
            self._saved(generation)
        else:
            # a child killed half-way (OOM, SIGKILL) leaves its temporary file: on a full disk
            # that would hold on to the very space the next snapshot needs
            with contextlib.suppress(OSError):
                os.unlink(temporary_path(self.path, pid))
            if not block:
                code = os.waitstatus_to_exitcode(status)
                self._failed(report or f"snapshot process ended with status {code}")

    def _saved(self, generation: int | None) -> None:
        if self.journal is not None and generation is not None:
            self.journal.discard_through(generation)

    def _failed(self, reason: str) -> None:
        self.last_error = reason
        logger.warning("Could not save a snapshot of the state in %s: %s", self.path, reason)


def _snapshot_child(  # pragma: no cover
    state: State, sink: Sink, report_fd: int, parent: int, generation: int | None
) -> None:
    """Body of the forked snapshot process: write one snapshot, report, leave."""
    code = 1
    try:
        gc.disable()  # a collection would also touch (and so copy) every page shared with the parent
        # background work: on a machine with few cores the server's loop must win the CPU
        # (a pickling child beside it on 2 cores is one way a stall comes with no callback)
        with contextlib.suppress(OSError):
            os.nice(CHILD_NICENESS)
        # drop inherited sockets: a connection the server closes must not stay open in here
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, _max_fd())
        signal.set_wakeup_fd(-1)  # the parent's event loop must not hear this process's signals
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()

        def parent_still_there() -> None:
            if os.getppid() != parent:
                raise StateFileError("abandoned: the server that asked for it has gone")

        parent_still_there()
        sink(state, generation, parent_still_there)
        os.write(report_fd, b"ok")
        code = 0
    except BaseException as exc:
        with contextlib.suppress(Exception):
            os.write(report_fd, " ".join(str(exc).split()).encode()[:2000] or type(exc).__name__.encode())
    finally:
        os._exit(code)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


def _die_with_parent() -> None:
    """On Linux, ask to be killed if the server dies (kill -9) while this snapshot is written."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
