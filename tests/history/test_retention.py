"""[task_history] retention_days: prune() has the writer delete runs whose last event is older."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa

from luigid.history import schema
from tests.history.support import HistoryFactory, make_task, read_tables, run_once


def _key(result: sa.CursorResult[Any]) -> int:
    """The primary key an INSERT made."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def add_old_run(db_url: str, task_id: str, days_ago: list[float], message: str | None = None) -> int:
    """A run as if written long ago (one event per age given)."""
    engine = sa.create_engine(db_url)
    now = datetime.datetime.now()
    with engine.begin() as conn:
        record_id = _key(conn.execute(schema.tasks.insert().values(task_id=task_id, name="Old", host="h")))
        conn.execute(schema.task_parameters.insert().values(task_id=record_id, name="p", value="v"))
        for i, age in enumerate(days_ago):
            event_id = _key(
                conn.execute(
                    schema.task_events.insert().values(
                        task_id=record_id,
                        event_name="FAILED" if message and i == len(days_ago) - 1 else "PENDING",
                        ts=now - datetime.timedelta(days=age),
                    )
                )
            )
        if message:
            conn.execute(schema.task_event_messages.insert().values(event_id=event_id, message=message))
    engine.dispose()
    return record_id


def test_prune_deletes_runs_older_than_retention(make_history: HistoryFactory, db_url: str) -> None:
    history = make_history(retention_days=7)
    assert history.flush(timeout=30)  # tables exist
    stale = add_old_run(db_url, "Old_1", [30, 20], message="long ago")
    stale_2 = add_old_run(db_url, "Old_2", [8])
    still_active = add_old_run(db_url, "Old_3", [30, 1])  # scheduled long ago, touched yesterday
    run_once(history, make_task("New_1"), failure="recent failure")
    assert history.flush(timeout=30)

    history.prune()
    assert history.flush(timeout=30)

    rows = read_tables(db_url)
    kept = {r[0] for r in rows["tasks"]}
    assert stale not in kept and stale_2 not in kept
    assert still_active in kept
    assert [r[1] for r in rows["tasks"]] == ["Old_3", "New_1"]
    assert {r[1] for r in rows["task_events"]} == kept
    assert {r[0] for r in rows["task_parameters"]} == {still_active}
    assert [m for _, m in rows["task_event_messages"]] == ["recent failure"]
    assert history.metrics()["pruned_runs"] == 2


def test_retention_is_off_by_default(make_history: HistoryFactory, db_url: str) -> None:
    history = make_history()
    assert history.flush(timeout=30)
    add_old_run(db_url, "Old_1", [3650])
    history.prune()
    assert history.flush(timeout=30)
    assert [r[1] for r in read_tables(db_url)["tasks"]] == ["Old_1"]
    assert history.metrics()["pruned_runs"] == 0
