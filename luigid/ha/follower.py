"""Reading what the leader committed: the latest snapshot and the log after it.

A standby keeps one connection LISTENing on the cluster's channel (every commit notifies it)
and reads by sequence number on another, so a lost notification only delays it until the
next tick. Records are replayed with every side effect muted, as a restart's replay is.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
from psycopg import sql

from luigid.ha import schema
from luigid.ha.connection import connect
from luigid.ha.store import decode_body
from luigid.storage.changelog_format import Record

#: records read per query while catching up
BATCH = 5000


class LogReader:
    def __init__(self, dsn: str, lease_timeout: float, channel: str) -> None:
        self._dsn = dsn
        self._lease_timeout = lease_timeout
        self._channel = channel
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: psycopg.AsyncConnection[Any] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await asyncio.wait_for(connect(self._dsn, self._lease_timeout), self._lease_timeout)
        return self._conn

    async def _fetch(self, query: str, **values: Any) -> list[tuple[Any, ...]]:
        conn = await self._connection()
        cur = await conn.execute(query, schema.params(**values))
        return await cur.fetchall()

    async def snapshot(self) -> tuple[int, bytes] | None:
        rows = await self._fetch(schema.READ_SNAPSHOT)
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def snapshot_seq(self) -> int:
        rows = await self._fetch(schema.SNAPSHOT_SEQ)
        return int(rows[0][0]) if rows else -1

    async def records_after(self, seq: int) -> list[Record]:
        rows = await self._fetch(schema.READ_LOG, after=seq, limit=BATCH)
        return [decode_body(int(row[0]), row[1]) for row in rows]

    async def wait_for_commit(self, timeout: float) -> None:
        """Return when the leader notifies a commit, or after ``timeout``."""
        if self._listener is None or self._listener.closed:
            self._listener = await asyncio.wait_for(
                connect(self._dsn, self._lease_timeout), self._lease_timeout
            )
            await self._listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            return  # the caller reads once more: a commit may have landed before LISTEN
        async for _ in self._listener.notifies(timeout=timeout, stop_after=1):
            pass

    async def stop_listening(self) -> None:
        """While leading: notifications nobody reads would pile up in PostgreSQL's queue."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()

    async def close(self) -> None:
        for conn in (self._conn, self._listener):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._conn = self._listener = None
