"""Writing batches of events and pruning old runs; runs only in the writer thread.

One batch is one transaction. Run bookkeeping for the batch is staged and handed back, to be
applied to the RunTracker only after the commit succeeded, so a failed batch can be retried
as if it had never been tried.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from luigid.core.model import FAILED, RUNNING
from luigid.history import schema
from luigid.history.events import HistoryEvent
from luigid.history.runs import ENDING_EVENTS, RunState, RunTracker, starts_new_run

#: ids per IN (...) list, well under every database's bound-parameter limit
IN_CHUNK = 500


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def param_text(value: Any) -> str:
    """Parameter values as luigi stores them: the string the worker sent, else its JSON form."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def _cut(text: str | None, length: int) -> str | None:
    return text[:length] if text is not None and len(text) > length else text


def _insert_returning_ids(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows, returning their new ids in row order (one statement where the database allows)."""
    if not rows:
        return []
    if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
        stmt = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return [row[0] for row in conn.execute(stmt, rows)]
    ids = []
    for row in rows:
        key = conn.execute(table.insert(), row).inserted_primary_key
        assert key is not None
        ids.append(int(key[0]))
    return ids


def write_batch(
    conn: sa.Connection, batch: Sequence[HistoryEvent], tracker: RunTracker
) -> dict[str, RunState]:
    """Write ``batch`` inside the caller's transaction; return the run states to remember after commit."""
    staged: dict[str, RunState] = {}
    new_runs: list[tuple[RunState, HistoryEvent]] = []
    event_runs: list[tuple[RunState, HistoryEvent]] = []
    host_updates: dict[int, str] = {}

    for event in batch:
        current = staged.get(event.task_id) or tracker.get(event.task_id)
        if starts_new_run(current, event.event_name):
            state = RunState(None, False, event.host)
            new_runs.append((state, event))
        else:
            assert current is not None
            state = current if event.task_id in staged else current.copy()
            if event.host and event.event_name == RUNNING and state.host != event.host:
                state.host = event.host
                if state.record_id is not None:
                    host_updates[state.record_id] = event.host
        if event.event_name in ENDING_EVENTS:
            state.ended = True
        staged[event.task_id] = state
        event_runs.append((state, event))

    # New runs first: their rows (and the host a RUNNING event in this batch gave them).
    task_rows = [
        {
            "task_id": _cut(event.task_id, schema.TASK_ID_LENGTH),
            "name": _cut(event.family, schema.NAME_LENGTH),
            "host": _cut(state.host, schema.HOST_LENGTH),
        }
        for state, event in new_runs
    ]
    for (state, _event), record_id in zip(
        new_runs, _insert_returning_ids(conn, schema.tasks, task_rows), strict=True
    ):
        state.record_id = record_id
    param_rows = [
        {"task_id": state.record_id, "name": name, "value": param_text(value)}
        for state, event in new_runs
        # names are cut to the column width; a clash after cutting keeps the first value
        for name, value in {
            _cut(k, schema.PARAM_NAME_LENGTH): v for k, v in reversed(event.params.items())
        }.items()
    ]
    if param_rows:
        conn.execute(schema.task_parameters.insert(), param_rows)

    event_rows = [
        {
            "task_id": state.record_id,
            "event_name": event.event_name,
            "ts": datetime.datetime.fromtimestamp(event.ts),
        }
        for state, event in event_runs
    ]
    messages = [
        (i, e.message) for i, (_s, e) in enumerate(event_runs) if e.event_name == FAILED and e.message
    ]
    if messages:
        event_ids = _insert_returning_ids(conn, schema.task_events, event_rows)
        conn.execute(
            schema.task_event_messages.insert(),
            [{"event_id": event_ids[i], "message": message} for i, message in messages],
        )
    else:
        conn.execute(schema.task_events.insert(), event_rows)

    if host_updates:
        conn.execute(
            schema.tasks.update().where(schema.tasks.c.id == sa.bindparam("record_id")),
            [
                {"record_id": rid, "host": _cut(host, schema.HOST_LENGTH)}
                for rid, host in host_updates.items()
            ],
        )
    return staged


def prune_runs_before(engine: sa.Engine, cutoff: datetime.datetime, chunk: int = IN_CHUNK) -> set[int]:
    """Delete runs whose newest event is older than ``cutoff``, a chunk per transaction; return their ids."""
    te = schema.task_events
    stale = (
        sa.select(te.c.task_id)
        .where(te.c.task_id.is_not(None))
        .group_by(te.c.task_id)
        .having(sa.func.max(te.c.ts) < cutoff)
        .limit(chunk)
    )
    deleted: set[int] = set()
    while True:
        with engine.begin() as conn:
            ids = [row[0] for row in conn.execute(stale)]
            if not ids:
                return deleted
            event_ids = sa.select(te.c.id).where(te.c.task_id.in_(ids)).scalar_subquery()
            msg = schema.task_event_messages
            conn.execute(msg.delete().where(msg.c.event_id.in_(event_ids)))
            conn.execute(te.delete().where(te.c.task_id.in_(ids)))
            conn.execute(schema.task_parameters.delete().where(schema.task_parameters.c.task_id.in_(ids)))
            conn.execute(schema.tasks.delete().where(schema.tasks.c.id.in_(ids)))
        deleted.update(ids)
