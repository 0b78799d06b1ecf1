"""Opening connections to PostgreSQL for HA (psycopg 3, autocommit).

TCP keepalives and ``tcp_user_timeout`` make a cut network fail the connection in seconds
rather than minutes; a frozen peer is the lease's job (``luigid.ha.election``).
"""

from __future__ import annotations

from typing import Any

import psycopg

from luigid.ha import schema

#: errors that mean "PostgreSQL could not be reached or dropped us"
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OSError,
)


def _options(dsn: str, lease_timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": max(2, int(lease_timeout / 2)),
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": int(lease_timeout * 1000 / 2),
    }
    if "application_name" not in dsn:  # the URL's own wins: it may name the node
        options["application_name"] = "luigid-ha"
    return options


async def connect(dsn: str, lease_timeout: float) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(dsn, **_options(dsn, lease_timeout))


def connect_sync(dsn: str, lease_timeout: float) -> psycopg.Connection[Any]:
    return psycopg.Connection.connect(dsn, **_options(dsn, lease_timeout))


async def current_schema(conn: psycopg.AsyncConnection[Any]) -> str:
    cur = await conn.execute("SELECT current_schema()")
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise psycopg.OperationalError("no current schema: set one in search_path")
    return str(row[0])


async def ensure_tables(conn: psycopg.AsyncConnection[Any], seed: bytes | None = None) -> bool:
    """Create the tables if needed; with ``seed`` (a state file's bytes), make it the first
    snapshot of a cluster that has none and no log yet. True when the seed was used."""
    async with conn.transaction():
        await conn.execute(schema.CREATE_LOCK, schema.params())
        cur = await conn.execute(schema.TABLES_EXIST)
        row = await cur.fetchone()
        if not (row and row[0]):  # a role without CREATE works on tables made for it
            await conn.execute(schema.CREATE)
        if seed is None:
            return False
        cur = await conn.execute(schema.SEED, schema.params(data=seed))
        return cur.rowcount == 1
