"""Read queries behind the history pages; plain records out, every listing bounded by a limit.

They read only luigi's columns (plus our message table), so they work the same on databases
luigi wrote, where one ``tasks`` row may hold many runs' events.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from luigid.core.model import FAILED, RUNNING
from luigid.history import schema
from luigid.history.runs import ENDING_EVENTS
from luigid.history.store import chunks
from luigid.history.views import DurationPoint, EventView, FamilyView, RunView

#: events shown at most on one run's page (a luigi-written row can hold thousands)
MAX_EVENTS_SHOWN = 1000


te = schema.task_events
tk = schema.tasks
tp = schema.task_parameters
tm = schema.task_event_messages


def _params_for(conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, str | None]]:
    found: dict[int, dict[str, str | None]] = {i: {} for i in ids}
    for part in chunks(ids):
        rows = conn.execute(sa.select(tp.c.task_id, tp.c.name, tp.c.value).where(tp.c.task_id.in_(part)))
        for task_id, name, value in rows:
            found[task_id][name] = value
    return found


def _latest_events_for(conn: sa.Connection, ids: Sequence[int]) -> dict[int, EventView]:
    found: dict[int, EventView] = {}
    for part in chunks(ids):
        rank = (
            sa.func.row_number()
            .over(partition_by=te.c.task_id, order_by=(te.c.ts.desc(), te.c.id.desc()))
            .label("rank")
        )
        ranked = sa.select(te.c.id, te.c.task_id, te.c.event_name, te.c.ts, rank).where(
            te.c.task_id.in_(part)
        )
        sub = ranked.subquery()
        query = sa.select(sub.c.id, sub.c.task_id, sub.c.event_name, sub.c.ts).where(sub.c.rank == 1)
        for event_id, task_id, name, ts in conn.execute(query):
            found[task_id] = EventView(event_id, name, ts)
    return found


def _summaries(conn: sa.Connection, rows: Sequence[sa.Row]) -> list[RunView]:
    ids = [row.id for row in rows]
    params = _params_for(conn, ids)
    latest = _latest_events_for(conn, ids)
    return [
        RunView(
            row.id,
            row.task_id,
            row.name,
            row.host,
            params[row.id],
            (latest[row.id],) if row.id in latest else (),
        )
        for row in rows
    ]


def _runs_by_activity(
    conn: sa.Connection,
    limit: int,
    where: Sequence[sa.ColumnElement[bool]],
    event_where: Sequence[sa.ColumnElement[bool]] = (),
) -> list[RunView]:
    """Runs matching ``where`` (on ``tasks``), most recently active first."""
    last = sa.select(te.c.task_id, sa.func.max(te.c.ts).label("last_ts")).join(tk, tk.c.id == te.c.task_id)
    for condition in (*where, *event_where):
        last = last.where(condition)
    last_sub = last.group_by(te.c.task_id).subquery()
    query = (
        sa.select(tk.c.id, tk.c.task_id, tk.c.name, tk.c.host)
        .join(last_sub, last_sub.c.task_id == tk.c.id)
        .order_by(last_sub.c.last_ts.desc(), tk.c.id.desc())
        .limit(limit)
    )
    return _summaries(conn, list(conn.execute(query)))


def recent_runs(conn: sa.Connection, since: datetime.datetime, limit: int) -> list[RunView]:
    """Runs with an event at or after ``since``."""
    return _runs_by_activity(conn, limit, (), (te.c.ts >= since,))


def runs_by_name(conn: sa.Connection, family: str, limit: int) -> list[RunView]:
    return _runs_by_activity(conn, limit, (tk.c.name == family,))


def runs_by_params(conn: sa.Connection, family: str, params: Mapping[str, str], limit: int) -> list[RunView]:
    """Runs of ``family`` whose stored parameters include every given name=value."""
    conditions: list[sa.ColumnElement[bool]] = [tk.c.name == family]
    for name, value in params.items():
        alias = tp.alias()
        match = sa.select(alias.c.task_id).where(alias.c.name == name, alias.c.value == value)
        conditions.append(tk.c.id.in_(match))
    return _runs_by_activity(conn, limit, conditions)


def run_by_id(conn: sa.Connection, record_id: int) -> RunView | None:
    row = conn.execute(
        sa.select(tk.c.id, tk.c.task_id, tk.c.name, tk.c.host).where(tk.c.id == record_id)
    ).first()
    if row is None:
        return None
    events = list(
        conn.execute(
            sa.select(te.c.id, te.c.event_name, te.c.ts)
            .where(te.c.task_id == record_id)
            .order_by(te.c.ts.desc(), te.c.id.desc())
            .limit(MAX_EVENTS_SHOWN)
        )
    )
    params = _params_for(conn, [row.id])[row.id]
    messages = _messages_for(conn, [e.id for e in events if e.event_name == FAILED])
    return RunView(
        row.id,
        row.task_id,
        row.name,
        row.host,
        params,
        tuple(EventView(e.id, e.event_name, e.ts, messages.get(e.id)) for e in events),
    )


def _messages_for(conn: sa.Connection, event_ids: Sequence[int]) -> dict[int, str]:
    """Failure messages by event id; none when our table is not there yet (a luigi-made database)."""
    if not event_ids:
        return {}
    found: dict[int, str] = {}
    try:
        for part in chunks(event_ids):
            rows = conn.execute(sa.select(tm.c.event_id, tm.c.message).where(tm.c.event_id.in_(part)))
            found.update((event_id, message) for event_id, message in rows)
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        # Our last statement on this connection, so a PostgreSQL transaction left aborted is harmless.
        return {}
    return found


def runs_by_task_id(conn: sa.Connection, task_id: str, limit: int) -> list[RunView]:
    """Every run recorded for ``task_id``, newest row first."""
    rows = conn.execute(
        sa.select(tk.c.id, tk.c.task_id, tk.c.name, tk.c.host)
        .where(tk.c.task_id == task_id)
        .order_by(tk.c.id.desc())
        .limit(limit)
    )
    return _summaries(conn, list(rows))


def families(conn: sa.Connection, limit: int) -> list[FamilyView]:
    rows = conn.execute(
        sa.select(tk.c.name, sa.func.count().label("runs"))
        .where(tk.c.name.is_not(None))
        .group_by(tk.c.name)
        .order_by(tk.c.name)
        .limit(limit)
    )
    return [FamilyView(name, runs) for name, runs in rows]


def run_durations(conn: sa.Connection, family: str, limit: int) -> list[DurationPoint]:
    """How long each run of ``family`` took from RUNNING to DONE/FAILED, oldest first.

    Looks at the newest ``limit`` rows of the family. Each RUNNING is paired with the next
    ending event of the same row, so luigi-written rows holding several runs give one point each.
    """
    ids = [
        row[0]
        for row in conn.execute(
            sa.select(tk.c.id).where(tk.c.name == family).order_by(tk.c.id.desc()).limit(limit)
        )
    ]
    task_ids: dict[int, str | None] = {}
    points: list[DurationPoint] = []
    for part in chunks(ids):
        for rid, tid in conn.execute(sa.select(tk.c.id, tk.c.task_id).where(tk.c.id.in_(part))):
            task_ids[rid] = tid
        events = conn.execute(
            sa.select(te.c.task_id, te.c.event_name, te.c.ts)
            .where(te.c.task_id.in_(part))
            .order_by(te.c.task_id, te.c.ts, te.c.id)
        )
        started: dict[int, datetime.datetime] = {}
        for rid, name, ts in events:
            if name == RUNNING:
                started[rid] = ts
            elif name in ENDING_EVENTS and rid in started:
                begin = started.pop(rid)
                points.append(
                    DurationPoint(rid, task_ids.get(rid), begin, (ts - begin).total_seconds(), name)
                )
    points.sort(key=lambda p: (p.started, p.run_id))
    return points
