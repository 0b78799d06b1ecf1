"""The change log on local disk: every state change since the last snapshot.

Files are ``<state_path>.changelog.<gen>`` (format: ``luigid.storage.changelog_format``).
Like the status journal they replace, a snapshot covers every generation up to the one it
was taken in (``rotate`` starts the next one at that moment), and those files are deleted
once the snapshot is on disk; on load, later generations are replayed.

Each record is handed to the OS with ``os.write`` before its call is answered, so a process
that dies loses nothing it acknowledged. What a power loss can take depends on the policy
(``[scheduler] journal_fsync``):

* ``always``: replies wait for an fsync covering their records. Group commit: the first
  record of a turn of the event loop schedules one fsync for the next turn, and every
  reply of that turn waits for it (``durable``).
* ``everysec``: a background thread fsyncs once a second when there is something new.
* ``no``: the OS writes back when it likes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

from luigid.core.throttled_log import ThrottledWarning
from luigid.storage.changelog_format import HEADER, NewerFormat, Record, encode_record, read_records
from luigid.storage.codec import StateFileError
from luigid.storage.generations import Generations
from luigid.storage.journal import Journal
from luigid.storage.statefile import quarantine

logger = logging.getLogger("luigi.server")

POLICIES = ("always", "everysec", "no")


class ChangeStore(Protocol):
    """What the composition root and the server need of a change log: the scheduler's
    ``append`` (``luigid.core.ports.ChangeLog``), reading back, generations a snapshot
    covers, and durability. ``LocalChangeLog`` keeps it in files; another implementation
    (a database) goes behind the same interface."""

    #: a status journal an older luigid left, to read once (None where there is none)
    legacy: Journal | None
    #: the last reading stopped at damage (what was replayed is then only in memory)
    cut_short: bool

    def append(self, method: str, arguments: bytes, now: float, ids: list[str]) -> None: ...

    def durable(self) -> Awaitable[None] | None:
        """What a reply waits for (None: nothing). It, or its awaitable, may raise
        ``luigid.core.ports.WritesRefused``."""
        ...

    def refusal(self) -> str | None:
        """None while changes are accepted; otherwise why not (the call is not run)."""
        ...

    def records_after(self, gen: int | None) -> Iterator[Record]: ...

    def start_after(self, gen: int) -> None: ...

    def rotate(self) -> int: ...

    def discard_through(self, gen: int) -> None: ...

    def close(self) -> None: ...


class LocalChangeLog(Generations):
    """``luigid.core.ports.ChangeLog`` in files next to the state file."""

    def __init__(
        self, state_path: str, policy: str = "everysec", fsync: Callable[[int], None] = os.fsync
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"journal_fsync must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.policy = policy
        super().__init__(state_path, ".changelog.", "change log")
        #: status journals an older luigid left: read once, deleted with the generations they share
        self.legacy: Journal | None = Journal(state_path)
        existing = self.generations() + self.legacy.generations()
        #: generation new records go to; never reuses a number found on disk
        self.gen = max(existing) + 1 if existing else 0
        self._fsync = fsync
        self._fd: int | None = None
        self._seq = 0
        self._dirty = False
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []
        self._commit_scheduled = False
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        # a full disk fails every call: one line a minute, with a count
        self._write_warning = ThrottledWarning(logger)
        self.cut_short = False

    # ------------------------------------------------------------------ files

    # ---------------------------------------------------------------- writing

    def append(self, method: str, arguments: bytes, now: float, ids: list[str]) -> None:
        """Write one record to the OS. Never raises: the call that made it must still answer."""
        try:
            fd = self._fd if self._fd is not None else self._open()
            data = encode_record(self._seq, method, arguments, now, ids)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            self._seq += 1
            self._dirty = True
        except Exception as exc:  # disk full, permissions: warn, keep serving
            self._write_failed(exc)

    def _open(self) -> int:
        with self._lock:
            fd = os.open(
                self.path(self.gen),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                0o600,
            )
            if os.fstat(fd).st_size == 0:
                os.write(fd, HEADER)
            self._fd = fd
            self._seq = 0
        if self.policy == "everysec" and self._syncer is None:
            self._syncer = threading.Thread(
                target=self._sync_every_second, name="changelog-fsync", daemon=True
            )
            self._syncer.start()
        return fd

    def _write_failed(self, exc: Exception) -> None:
        self._write_warning.warn("Could not write the change log %s: %s", self.path(self.gen), exc)

    # ------------------------------------------------------------ durability

    def sync(self) -> None:
        """fsync what was written, if anything was."""
        with self._lock:
            if not self._dirty or self._fd is None:
                return
            self._dirty = False
            try:
                self._fsync(self._fd)
            except OSError as exc:
                self._dirty = True
                logger.error("Could not fsync the change log %s: %s", self.path(self.gen), exc)

    def durable(self) -> Awaitable[None] | None:
        """With ``always``: what a reply waits for, so that its records are on disk first
        (None when nothing is waiting to be synced). Other policies: None."""
        if self.policy != "always" or not self._dirty:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server: sync now
            self.sync()
            return None
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if not self._commit_scheduled:
            self._commit_scheduled = True
            loop.call_soon(self._group_commit)
        return waiter

    def refusal(self) -> str | None:
        return None

    def _group_commit(self) -> None:
        """One fsync for every record written in the loop turn before this one."""
        self._commit_scheduled = False
        self.sync()
        self._release()

    def _release(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _sync_every_second(self) -> None:
        while not self._stop.wait(1.0):
            self.sync()

    # ------------------------------------------------------------ generations

    def rotate(self) -> int:
        """Start a new generation; return the one a snapshot taken now covers."""
        if self.policy != "no":
            self.sync()
        self._close_file()
        self._release()
        covered = self.gen
        self.gen += 1
        return covered

    def start_after(self, gen: int) -> None:
        """New records go to a generation later than ``gen`` (the loaded snapshot's)."""
        if self.gen <= gen:
            self._close_file()
            self.gen = gen + 1

    def discard_through(self, gen: int) -> None:
        """Delete the files (and older status journals) a saved snapshot covers."""
        if self.legacy is not None:
            self.legacy.discard_through(gen)
        super().discard_through(gen)

    def _close_file(self) -> None:
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
                self._dirty = False

    def close(self) -> None:
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join(5.0)
            self._syncer = None
        if self.policy != "no":
            self.sync()
        self._close_file()
        self._release()

    # ---------------------------------------------------------------- reading

    def records_after(self, gen: int | None) -> Iterator[Record]:
        """Every record in generations later than ``gen`` (all of them for None), in order.
        A torn end is dropped with one warning; at a damaged record reading stops, with one
        error, and that file and every later one are moved aside."""
        numbers = [n for n in self.generations() if gen is None or n > gen]
        for index, number in enumerate(numbers):
            path = self.path(number)
            try:
                with open(path, "rb") as src:
                    data = src.read()
            except OSError as exc:
                logger.error("Could not read the change log %s: %s; changes after it are lost", path, exc)
                return
            try:
                contents = read_records(data)
            except NewerFormat as exc:
                raise StateFileError(f"{path}: {exc}; upgrade luigid or move the file away") from None
            yield from contents.records
            if contents.torn:
                logger.warning(
                    "Change log %s ends in a record cut short (a crash while writing it): dropped it", path
                )
            if contents.damage is not None:
                self.cut_short = True
                moved = [quarantine(self.path(n)) for n in numbers[index:]]
                logger.error(
                    "Change log %s is damaged (%s): replayed the %d records before it and stopped; "
                    "moved it (and any later change log files) aside: %s",
                    path,
                    contents.damage,
                    len(contents.records),
                    ", ".join(moved),
                )
                return
