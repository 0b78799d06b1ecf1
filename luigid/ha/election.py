"""Who leads: an advisory lock, a lease by PostgreSQL's clock, and an epoch (fencing token).

All of it goes through one dedicated connection per node:

* a standby asks for the session advisory lock on every tick. A leader that dies or loses
  its connection loses the lock with its session, so a standby gets it within a tick.
* A frozen leader (SIGSTOP, a long pause) keeps its session and so its lock; its lease then
  lapses, as PostgreSQL's clock sees it, because it stops renewing. Once it has, a standby
  ends the holder's session (``pg_terminate_backend``) and takes the lock.
* The lock holder then bumps the epoch (``claim``). Every commit of the old leader names its
  own epoch and fails from then on (``schema.COMMIT``), so it can never add to the log again.

The leader renews its lease every tick and trusts it only until ``lease_timeout`` after it
*sent* the renewal, by its own monotonic clock: PostgreSQL granted it from a later moment, so
the leader always stops believing it leads before a standby may take over.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg

from luigid.ha import schema
from luigid.ha.connection import connect


class Election:
    def __init__(self, dsn: str, lease_timeout: float, node: str, url: str) -> None:
        self._dsn = dsn
        self.lease_timeout = lease_timeout
        self.node = node
        self.url = url
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def _row(self, query: str, **values: Any) -> tuple[Any, ...] | None:
        if self._conn is None or self._conn.closed:
            self._conn = await asyncio.wait_for(connect(self._dsn, self.lease_timeout), self.lease_timeout)
        cur = await asyncio.wait_for(
            self._conn.execute(query, schema.params(**values)), self.lease_timeout / 2
        )
        return await cur.fetchone()

    async def campaign(self) -> tuple[schema.Leader, bool]:
        """The leader row, and whether this node now holds the lock."""
        row = await self._row(schema.READ_LEADER)
        assert row is not None
        return schema.Leader(int(row[0]), row[1], row[2], bool(row[3])), bool(row[4])

    async def peek(self) -> schema.Leader:
        row = await self._row(schema.PEEK_LEADER)
        assert row is not None
        return schema.Leader(int(row[0]), row[1], row[2], bool(row[3]))

    async def end_frozen_holder(self) -> None:
        """End the session of a lock holder whose lease has lapsed (a frozen leader)."""
        await self._row(schema.TERMINATE_HOLDERS)

    async def claim(self) -> int:
        """Become leader: the next epoch, with a fresh lease. Only the lock holder calls it."""
        row = await self._row(schema.CLAIM, node=self.node, url=self.url, lease=self.lease_timeout)
        assert row is not None
        return int(row[0])

    async def renew(self, epoch: int) -> bool:
        """Extend the lease; False when the epoch has moved on (another node leads)."""
        return await self._row(schema.RENEW, epoch=epoch, lease=self.lease_timeout) is not None

    async def resign(self, epoch: int) -> None:
        """Leave cleanly: end the lease now and let go of the lock."""
        await self._row(schema.RESIGN, epoch=epoch)
        await self._row(schema.UNLOCK)

    async def close(self) -> None:
        """Close the session, which lets go of the lock if it had it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
