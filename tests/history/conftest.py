"""Fixtures for the task history tests: real SQLite files and a real PostgreSQL database.

PostgreSQL tests get a database of their own, created for the test and dropped after it, on
the server at 127.0.0.1:5432 (trust auth); they skip, saying why, when none answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from luigid.core.model import DONE, FAILED, PENDING, RUNNING, RetryPolicy, Task
from luigid.history import DbTaskHistory, schema
from luigid.history.config import HistoryConfig
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


def _pg_admin() -> tuple[sa.Engine | None, str]:
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


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[sa.Engine, str]]:
    engine, user_or_error = _pg_admin()
    if engine is None:
        pytest.skip(f"PostgreSQL at {PG_HOST}:{PG_PORT} does not answer: {user_or_error}")
    yield engine, user_or_error
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: tuple[sa.Engine, str]) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    engine, user = pg_admin
    name = f"luigid_hist_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg2://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return str(request.getfixturevalue("pg_url"))


HistoryFactory = Callable[..., DbTaskHistory]


@pytest.fixture
def make_history(db_url: str) -> Iterator[HistoryFactory]:
    """Started DbTaskHistory objects on ``db_url`` (or another url), stopped at the end of the test."""
    made: list[DbTaskHistory] = []

    def factory(url: str | None = None, **settings: Any) -> DbTaskHistory:
        config = HistoryConfig(db_connection=url or db_url, **{"flush_interval": 0.05, **settings})
        history = DbTaskHistory(config, open_engine(config.db_connection))
        history.start()
        made.append(history)
        return history

    yield factory
    for history in made:
        history.stop(timeout=10)
