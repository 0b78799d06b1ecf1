"""Helpers for the task-history tests: tasks, one recorded run, and the tables read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from luigid.core.model import DONE, FAILED, PENDING, RUNNING, RetryPolicy, Task
from luigid.history import DbTaskHistory, schema
from luigid.history.engine import open_engine

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USERS = ("postgres", "root")
POLICY = RetryPolicy(retry_count=999, disable_hard_timeout=999999, disable_window=3600)


def make_task(task_id: str, family: str = "Ingest", params: dict[str, Any] | None = None) -> Task:
    return Task(task_id, PENDING, [], POLICY, family=family, params=params or {})


def run_once(history: DbTaskHistory, task: Task, host: str = "worker-a", failure: str | None = None) -> None:
    """One run of ``task`` reported as the scheduler reports it: scheduled, started, finished."""
    task.status = PENDING
    history.task_scheduled(task)
    task.status = RUNNING
    task.worker_running = "w1"
    history.task_started(task, host)
    if failure is None:
        task.status = DONE
        history.task_finished(task, True)
    else:
        task.expl = failure
        task.status = FAILED
        history.task_finished(task, False)


def read_tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the history tables, in id order, read with a fresh engine."""
    engine = open_engine(url)
    ordering = {
        schema.tasks: [schema.tasks.c.id],
        schema.task_parameters: [schema.task_parameters.c.task_id, schema.task_parameters.c.name],
        schema.task_events: [schema.task_events.c.id],
        schema.task_event_messages: [schema.task_event_messages.c.event_id],
    }
    try:
        present = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            return {
                table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*order))]
                if table.name in present
                else []
                for table, order in ordering.items()
            }
    finally:
        engine.dispose()


def connect_pg_admin() -> tuple[sa.Engine | None, str]:
    last_error = "no user tried"
    for user in PG_USERS:
        engine = sa.create_engine(
            f"postgresql+psycopg2://{user}@{PG_HOST}:{PG_PORT}/test",
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 3},
        )
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return engine, user
        except Exception as exc:
            last_error = str(exc).strip().splitlines()[0]
            engine.dispose()
    return None, last_error


HistoryFactory = Callable[..., DbTaskHistory]
