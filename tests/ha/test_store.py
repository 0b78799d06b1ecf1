"""The leader's change store on a real PostgreSQL, in process: group commit and fencing."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from luigid.core.ports import WritesRefused
from luigid.ha import schema
from luigid.ha.connection import connect, ensure_tables
from luigid.ha.store import PgChangeStore
from tests.ha.support import dsn


def rows(url: str) -> list[tuple[int, int, str]]:
    """(seq, xmin, body) of every record: rows written by one transaction share an xmin."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT seq, xmin::text::bigint, body FROM luigid_ha_log ORDER BY seq"
        ).fetchall()
    return [(int(seq), int(xmin), body) for seq, xmin, body in found]


async def _store(url: str, fenced: list[str]) -> PgChangeStore:
    conn = await connect(url, 5.0)
    await ensure_tables(conn)
    await conn.execute("UPDATE luigid_ha_leader SET epoch = 7 WHERE id = 1")
    await conn.close()
    store = PgChangeStore(url, 5.0, schema.channel_for("x"), lambda: None, fenced.append)
    store.lead(7, 0)
    return store


def test_one_loop_turns_records_are_one_commit_and_replies_wait_for_it(schema: str) -> None:
    url = dsn(schema, "store")

    async def scenario() -> list[Any]:
        store = await _store(url, [])
        for n in range(5):  # one turn of the loop: five calls' records
            store.append("add_task", f'{{"task_id":"T{n}"}}'.encode(), 100.0 + n, [])
        waiter = store.durable()
        assert waiter is not None
        assert rows(url) == []  # nothing is committed before the turn ends
        await waiter
        after_first = rows(url)
        store.append("add_task", b'{"task_id":"T5"}', 200.0, [])
        second = store.durable()
        assert second is not None
        await second
        await store.close_connection()
        return [after_first, rows(url)]

    after_first, after_second = asyncio.run(scenario())
    assert [seq for seq, _, _ in after_first] == [0, 1, 2, 3, 4]
    assert len({xmin for _, xmin, _ in after_first}) == 1  # one transaction
    assert after_second[-1][0] == 5 and after_second[-1][1] != after_first[0][1]
    assert after_second[0][2] == '["add_task",{"task_id":"T0"},100.0,[]]'


def test_a_newer_epoch_fences_the_commit_nothing_is_written_and_the_reply_is_refused(schema: str) -> None:
    url = dsn(schema, "store")
    fenced: list[str] = []

    async def scenario() -> tuple[PgChangeStore, BaseException | None]:
        store = await _store(url, fenced)

        def step_down(reason: str) -> None:  # as the node does when a commit is fenced
            fenced.append(reason)
            store.stop_leading(reason)

        store._fenced = step_down
        with psycopg.connect(url, autocommit=True) as other:  # another node took over
            other.execute("UPDATE luigid_ha_leader SET epoch = 8 WHERE id = 1")
        store.append("add_task", b'{"task_id":"Late"}', 1.0, [])
        waiter = store.durable()
        assert waiter is not None
        try:
            await waiter
            raised = None
        except WritesRefused as exc:
            raised = exc
        await store.close_connection()
        return store, raised

    store, raised = asyncio.run(scenario())
    assert fenced and "epoch 7 is no longer current" in fenced[0]
    assert isinstance(raised, WritesRefused)
    assert rows(url) == []
    assert store.committed == -1 and store.diverged  # the node reloads before it leads again
