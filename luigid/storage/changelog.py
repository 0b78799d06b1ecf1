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

When a record cannot be written or synced (a full disk, an I/O error), its call is not
acknowledged (``WritesRefused``, answered 503) and every later state-changing call is
refused before it runs, until the store can write again: ``refusal`` retries. The record
that failed stays pending in memory, in order, and is written first when space returns
(or dropped once a snapshot covers it), so the log never misses a change that later
records build on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

from luigid.core.ports import WritesRefused
from luigid.core.throttled_log import ThrottledWarning
from luigid.storage.changelog_format import HEADER, NewerFormat, Record, encode_record, read_records
from luigid.storage.codec import StateFileError
from luigid.storage.generations import Generations
from luigid.storage.journal import Journal
from luigid.storage.statefile import quarantine

logger = logging.getLogger("luigi.server")

POLICIES = ("always", "everysec", "no")
#: how often a refusing change log tries again to write what failed
RETRY_SECONDS = 0.5
REFUSING = "state-changing calls are refused (503) until it can be"


class ChangeStore(Protocol):
    """What the composition root and the server need of a change log: the scheduler's
    ``append`` (``luigid.core.ports.ChangeLog``), reading back, generations a snapshot
    covers, and durability. ``LocalChangeLog`` keeps it in files; another implementation
    (a database) goes behind the same interface."""

    #: a status journal an older luigid left, to read once (None where there is none)
    legacy: Journal | None
    #: the last reading stopped at damage (what was replayed is then only in memory)
    cut_short: bool
    #: times a state-changing call was refused or not acknowledged since start
    refused: int

    def append(self, method: str, arguments: bytes, now: float, ids: list[str]) -> None: ...

    @property
    def refusing(self) -> bool: ...

    def recover(self) -> bool: ...

    def refusal(self) -> str | None: ...

    def durable(self) -> Awaitable[None] | None: ...

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
        #: files of generations before this one not yet synced, (generation, descriptor):
        #: ``everysec`` rotations hand them to the background thread, which closes them
        self._handed: list[tuple[int, int]] = []
        #: sequence number of the next record in this generation's file
        self._seq = 0
        self._dirty = False
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []
        self._commit_scheduled = False
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        #: records made in memory but not yet written to their file, oldest first, each with
        #: its generation: changes are refused while there are any (see ``refusal``)
        self._pending: list[tuple[int, bytes]] = []
        #: why the last write / fsync failed (the fsync one clears when an fsync succeeds)
        self._write_error: str | None = None
        self._sync_error: str | None = None
        self._sync_error_gen = 0
        self._next_retry = 0.0
        self.refused = 0
        # a full disk fails every call: one line a minute, with a count
        self._write_warning = ThrottledWarning(logger)
        self.cut_short = False

    # ---------------------------------------------------------------- writing

    def append(self, method: str, arguments: bytes, now: float, ids: list[str]) -> None:
        """Write one record to the OS. Never raises: the change is made, so its record is
        kept pending when it cannot be written (and its call is then not acknowledged)."""
        data = encode_record(self._seq, method, arguments, now, ids)
        self._seq += 1
        if self._pending:  # order matters: nothing may overtake a record still pending
            self._pending.append((self.gen, data))
            return
        try:
            fd = self._fd if self._fd is not None else self._open()
        except OSError as exc:
            self._pending.append((self.gen, data))
            self._write_failed(exc)
            return
        rest = _write_all(fd, data)
        if rest is not None:
            self._pending.append((self.gen, rest[0]))
            self._write_failed(rest[1])
        self._dirty = True

    def _open(self) -> int:
        with self._lock:
            fd = os.open(
                self.path(self.gen),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                0o600,
            )
            try:
                if os.fstat(fd).st_size < len(HEADER):  # new, or its header was cut short by a full disk
                    os.ftruncate(fd, 0)
                    failed = _write_all(fd, HEADER)
                    if failed is not None:
                        os.ftruncate(fd, 0)
                        raise failed[1]
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        if self.policy == "everysec" and self._syncer is None:
            self._syncer = threading.Thread(
                target=self._sync_every_second, name="changelog-fsync", daemon=True
            )
            self._syncer.start()
        return fd

    def _write_failed(self, exc: Exception) -> None:
        self._write_error = f"could not write the change log {self.path(self.gen)}: {exc}"
        self._write_warning.warn("%s; %s", self._write_error, REFUSING)

    # ---------------------------------------------------------- refusing writes

    @property
    def refusing(self) -> bool:
        """Changes are refused now (nothing is retried to say so)."""
        return bool(self._pending) or self._sync_error is not None

    def recover(self) -> bool:
        """True when changes are accepted. A refusing log first retries what failed (at most
        every ``RETRY_SECONDS``), so writes resume by themselves once space returns."""
        if not self.refusing:
            return True
        now = time.monotonic()
        if now < self._next_retry:
            return False
        self._next_retry = now + RETRY_SECONDS
        self._retry()
        if self.refusing:
            return False
        self._resumed("what failed is written now")
        return True

    def _resumed(self, how: str) -> None:
        logger.warning("Change log %s can be written again (%s): accepting changes", self.path(self.gen), how)

    def refusal(self) -> str | None:
        """Asked before a state-changing call runs: None to let it, else why it is refused."""
        if self.recover():
            return None
        self.refused += 1
        return self._reason()

    def _reason(self) -> str:
        cause = self._sync_error if self._sync_error is not None else self._write_error
        return f"changes are refused for now: {cause}"

    def _retry(self) -> None:
        while self._pending:
            gen, data = self._pending[0]
            try:
                if gen == self.gen:
                    fd = self._fd if self._fd is not None else self._open()
                    rest = _write_all(fd, data)
                else:  # an older generation, its snapshot not saved: complete that file
                    rest = _append_to(self.path(gen), data)
            except OSError as exc:
                self._write_failed(exc)
                return
            if rest is not None:
                self._pending[0] = (gen, rest[0])
                self._write_failed(rest[1])
                return
            self._pending.pop(0)
            self._dirty = True
        if self._sync_error is not None and self._sync_error_gen != self.gen:
            # that file is closed (a snapshot was started since): sync it by its path
            try:
                _fsync_path(self.path(self._sync_error_gen))
                self._sync_error = None
            except FileNotFoundError:  # deleted: a saved snapshot covers it
                self._sync_error = None
            except OSError:
                return
        if self._sync_error is not None or self.policy == "always":
            self.sync()

    # ------------------------------------------------------------ durability

    def sync(self) -> None:
        """fsync what was written, if anything was, and the files a rotation handed over
        (``everysec``). The lock is not held across an fsync: the descriptor is duplicated
        under it, so a rotation on the event loop never waits behind the thread's fsync."""
        with self._lock:
            files, self._handed = self._handed, []
            if self._dirty and self._fd is not None:
                self._dirty = False
                try:
                    files.append((self.gen, os.dup(self._fd)))
                except OSError:  # no descriptor to spare: sync it here, under the lock
                    self._dirty = not self._fsynced(self.gen, self._fd)
        for gen, fd in files:
            try:
                if not self._fsynced(gen, fd):
                    with self._lock:
                        if gen == self.gen and self._fd is not None:
                            self._dirty = True  # the thread tries again in a second
            finally:
                os.close(fd)

    def _fsynced(self, gen: int, fd: int) -> bool:
        """fsync one generation's file; a failure refuses changes until a retry succeeds."""
        try:
            self._fsync(fd)
        except OSError as exc:
            self._sync_error = f"could not fsync the change log {self.path(gen)}: {exc}"
            self._sync_error_gen = gen
            self._write_warning.warn("%s; %s", self._sync_error, REFUSING)
            return False
        if self._sync_error_gen == gen:
            self._sync_error = None
        return True

    def durable(self) -> Awaitable[None] | None:
        """What a reply waits for: with ``always``, its records on disk (None when nothing
        is waiting to be synced). Raises (or the awaitable raises) ``WritesRefused`` when
        the call's records could not be written or synced: it must not be acknowledged."""
        if self._pending or self._sync_error is not None:
            self.refused += 1
            raise WritesRefused(self._reason())
        if self.policy != "always" or not self._dirty:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server: sync now
            self.sync()
            if self._sync_error is not None:
                raise WritesRefused(self._reason()) from None
            return None
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if not self._commit_scheduled:
            self._commit_scheduled = True
            loop.call_soon(self._group_commit)
        return waiter

    def _group_commit(self) -> None:
        """One fsync for every record written in the loop turn before this one."""
        self._commit_scheduled = False
        self.sync()
        self._release()

    def _release(self) -> None:
        waiters, self._waiters = self._waiters, []
        failed = self._sync_error is not None or bool(self._pending)
        for waiter in waiters:
            if not waiter.done():
                if failed:
                    self.refused += 1
                    waiter.set_exception(WritesRefused(self._reason()))
                else:
                    waiter.set_result(None)

    def _sync_every_second(self) -> None:
        while not self._stop.wait(1.0):
            self.sync()

    # ------------------------------------------------------------ generations

    def rotate(self) -> int:
        """Start a new generation; return the one a snapshot taken now covers. Under
        ``always`` the file is synced first (its replies wait for that); under ``everysec``
        it goes to the background thread, which syncs and closes it within a second: the
        snapshot's fork comes right after this, on the event loop."""
        if self.policy == "always":
            self.sync()
        elif self.policy == "everysec":
            with self._lock:
                if self._dirty and self._fd is not None:
                    self._handed.append((self.gen, self._fd))
                    self._fd = None
                    self._dirty = False
        self._close_file()
        self._release()
        covered = self.gen
        self.gen += 1
        self._seq = 0
        return covered

    def start_after(self, gen: int) -> None:
        """New records go to a generation later than ``gen`` (the loaded snapshot's)."""
        if self.gen <= gen:
            self._close_file()
            self.gen = gen + 1
            self._seq = 0

    def discard_through(self, gen: int) -> None:
        """Delete the files (and older status journals) a saved snapshot covers."""
        if self.legacy is not None:
            self.legacy.discard_through(gen)
        super().discard_through(gen)
        # the saved snapshot holds their changes: nothing to write any more
        was_refusing = self.refusing
        self._pending = [(g, data) for g, data in self._pending if g > gen]
        if self._sync_error is not None and self._sync_error_gen <= gen:
            self._sync_error = None
        if was_refusing and not self.refusing:
            self._resumed("a snapshot holds what failed")

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


def _write_all(fd: int, data: bytes) -> tuple[bytes, OSError] | None:
    """Write ``data`` to ``fd``; None when all of it was written, else what was not and why."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        return bytes(view), exc
    return None


def _append_to(path: str, data: bytes) -> tuple[bytes, OSError] | None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
    try:
        rest = _write_all(fd, data)
        if rest is None:
            os.fsync(fd)
        return rest
    finally:
        os.close(fd)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
