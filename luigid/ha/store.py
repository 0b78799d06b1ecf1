"""The leader's change log in PostgreSQL: ``luigid.storage.changelog.ChangeStore`` for HA.

``append`` only queues a record (it never fails the call that made it). The first record of
a turn of the event loop starts a commit for the next turn, which sends every queued record
in one statement (group commit, ``schema.COMMIT``); replies wait for it (``durable``). While
a commit is under way, new records queue for the next one, so commits never overlap and
records reach the log in the order they were made.

Invariant: a record applied in memory and not committed stays queued, and is retried (same
sequence numbers) until it is committed or the node stops leading; then the node reloads
from the database (``diverged``) rather than keep a state the log does not have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import psycopg

from luigid.core.ports import WritesRefused
from luigid.core.throttled_log import ThrottledWarning
from luigid.ha import schema
from luigid.ha.connection import connect
from luigid.storage.changelog_format import Record
from luigid.storage.journal import Journal

logger = logging.getLogger("luigi.server")

#: longest pause between two tries of a commit while PostgreSQL is unreachable
MAX_RETRY_PAUSE = 1.0


def encode_body(method: str, arguments: bytes, now: float, ids: list[str]) -> str:
    return orjson.dumps([method, orjson.Fragment(arguments), now, ids]).decode()


def decode_body(seq: int, body: str) -> Record:
    method, arguments, now, ids = orjson.loads(body)
    return Record(seq, method, arguments, float(now), ids)


class PgChangeStore:
    legacy: Journal | None = None
    cut_short = False

    def __init__(
        self,
        dsn: str,
        lease_timeout: float,
        channel: str,
        leadership: Callable[[], str | None],
        fenced: Callable[[str], None],
    ) -> None:
        self._dsn = dsn
        self._lease_timeout = lease_timeout
        #: the NOTIFY channel standbys listen on (set once the schema is known)
        self.channel = channel
        #: why this node may not change state now (None: it leads)
        self._leadership = leadership
        #: told when a commit finds a newer epoch
        self._fenced = fenced
        #: the epoch records are committed under; None while not leading
        self.epoch: int | None = None
        self.next_seq = 0
        #: the last sequence number known to be committed
        self.committed = -1
        self._pending: list[tuple[int, str]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        #: why the last commit failed, until one succeeds
        self.outage: str | None = None
        #: a change was made while not leading: the state must be reloaded before leading
        self.diverged = False
        #: state-changing calls refused or not acknowledged since start (for metrics)
        self.refused = 0
        self._warning = ThrottledWarning(logger)

    # ------------------------------------------------------------ the ChangeStore side

    def append(self, method: str, arguments: bytes, now: float, ids: list[str]) -> None:
        if self.epoch is None:
            self.diverged = True
            self._warning.warn("A change (%s) was made while this node does not lead: it will reload", method)
            return
        self._pending.append((self.next_seq, encode_body(method, arguments, now, ids)))
        self.next_seq += 1
        self._kick()

    @property
    def refusing(self) -> bool:
        return self._why_not() is not None

    def recover(self) -> bool:
        """True when changes are accepted (commits retry by themselves, in the background)."""
        return self._why_not() is None

    def refusal(self) -> str | None:
        reason = self._why_not()
        if reason is not None:
            self.refused += 1
        return reason

    def _why_not(self) -> str | None:
        reason = self._leadership()
        return reason if reason is not None else self.outage

    def durable(self) -> Awaitable[None] | None:
        target = self.next_seq - 1
        if self.epoch is None:
            self.refused += 1
            raise WritesRefused(self._leadership() or "this node is not the leader")
        if target <= self.committed:
            return None
        if self.outage is not None:
            self.refused += 1
            raise WritesRefused(self.outage)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        return waiter

    # the server's snapshots (luigid.storage.snapshots) cover everything appended so far
    def rotate(self) -> int:
        return self.next_seq - 1

    def discard_through(self, gen: int) -> None:
        """Nothing to do: the snapshot's transaction trims the log it covers."""

    def records_after(self, gen: int | None) -> Iterator[Record]:
        return iter(())  # the node loads from PostgreSQL itself (luigid.ha.node)

    def start_after(self, gen: int) -> None:
        pass

    def close(self) -> None:
        self._fail_waiters("the server is shutting down")

    # ------------------------------------------------------------------ leading

    def lead(self, epoch: int, next_seq: int) -> None:
        self.epoch = epoch
        self.next_seq = next_seq
        self.committed = next_seq - 1
        self._pending = []
        self.outage = None
        self.diverged = False

    def stop_leading(self, reason: str) -> None:
        """No more commits. Records not committed are dropped, and the state that has them
        must be reloaded (``diverged``)."""
        self.epoch = None
        if self._pending or (self._committer is not None and not self._committer.done()):
            self.diverged = True
        self._pending = []
        self._fail_waiters(reason)

    @property
    def idle(self) -> bool:
        return not self._pending

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued record is committed (at shutdown); False if it could not be."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._pending and self.epoch is not None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return not self._pending

    async def close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                logger.debug("closing the commit connection failed", exc_info=True)

    # --------------------------------------------------------------- committing

    def _kick(self) -> None:
        if self._committer is not None and not self._committer.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet: the first commit takes these along
        self._committer = loop.create_task(self._commit_loop())

    async def _commit_loop(self) -> None:
        pause = 0.05
        while self._pending and self.epoch is not None:
            epoch = self.epoch
            batch = list(self._pending)
            try:
                fenced = not await self._commit(epoch, batch)
            except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
                await self.close_connection()
                reason = " ".join(str(exc).split()) or type(exc).__name__
                self.outage = f"cannot commit to PostgreSQL, retry later: {reason}"
                self._warning.warn("HA: %s (%d changes waiting)", self.outage, len(self._pending))
                self._fail_waiters(self.outage)
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_PAUSE)
                continue
            if epoch != self.epoch:
                return  # stepped down meanwhile: stop_leading has settled everything
            if fenced:
                self._fenced(f"a newer leader took over (this node's epoch {epoch} is no longer current)")
                return
            del self._pending[: len(batch)]
            self.committed = batch[-1][0]
            if self.outage is not None:
                logger.info("HA: commits to PostgreSQL work again")
                self.outage = None
            pause = 0.05
            self._release()

    async def _commit(self, epoch: int, batch: list[tuple[int, str]]) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = await asyncio.wait_for(connect(self._dsn, self._lease_timeout), self._lease_timeout)
        values = schema.params(
            epoch=epoch,
            seqs=[seq for seq, _ in batch],
            bodies=[body for _, body in batch],
            channel=self.channel,
            last=str(batch[-1][0]),
        )
        cur = await asyncio.wait_for(self._conn.execute(schema.COMMIT, values), self._lease_timeout)
        row = await cur.fetchone()
        return bool(row and row[0])

    def _release(self) -> None:
        keep = []
        for target, waiter in self._waiters:
            if target <= self.committed:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((target, waiter))
        self._waiters = keep

    def _fail_waiters(self, reason: str) -> None:
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            if not waiter.done():
                waiter.set_exception(WritesRefused(reason))
