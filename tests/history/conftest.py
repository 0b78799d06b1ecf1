"""Fixtures for the task-history tests: SQLite always, PostgreSQL when a server answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from luigid.history import DbTaskHistory
from luigid.history.config import HistoryConfig
from luigid.history.engine import open_engine
from tests.history.support import PG_HOST, PG_PORT, HistoryFactory, connect_pg_admin


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[sa.Engine, str]]:
    engine, user_or_error = connect_pg_admin()
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
