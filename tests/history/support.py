"""Helpers for the task-history tests: tasks, one recorded run, the tables read back, a
database that makes the writer wait, and luigi's side of a test run in its own process."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def tables_locked(db_url: str, reads_too: bool) -> Iterator[None]:
    """Another session holds a lock on the history tables: writes wait for it, and with
    ``reads_too`` reads wait as well (without it, reads go on)."""
    if db_url.startswith("sqlite"):
        holder = sqlite3.connect(db_url.split("///", 1)[1].split("?", 1)[0], isolation_level=None)
        # EXCLUSIVE keeps readers out too; IMMEDIATE takes RESERVED: other writers wait, readers go on
        holder.execute("BEGIN EXCLUSIVE" if reads_too else "BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    else:
        mode = "ACCESS EXCLUSIVE" if reads_too else "EXCLUSIVE"  # EXCLUSIVE still lets SELECTs through
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            conn.execute(sa.text(f"LOCK TABLE tasks, task_parameters, task_events IN {mode} MODE"))
            try:
                yield
            finally:
                conn.rollback()
        engine.dispose()


def hanging_url(db_url: str) -> str:
    """``db_url`` for a writer that waits as long as a lock is held (SQLite's gives up after 5 s)."""
    return f"{db_url}?timeout=600" if db_url.startswith("sqlite") else db_url


def run_python(script: str, *args: str, env: dict[str, str]) -> str:
    """``script`` (dedented) run by a fresh Python with ``args`` (e.g. a luigi scheduler or worker,
    whose configuration is process-global); its stdout, failing with its stderr's end."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


HistoryFactory = Callable[..., DbTaskHistory]
