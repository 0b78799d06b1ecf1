"""Fixtures for the HA tests: a PostgreSQL schema of their own and a cluster on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ha.support import Cluster, fresh_schema, pg_available


@pytest.fixture
def schema() -> Iterator[str]:
    problem = pg_available()
    if problem is not None:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer: {problem}")
    with fresh_schema() as name:
        yield name


@pytest.fixture
def cluster(tmp_path: Path, schema: str) -> Iterator[Callable[..., Cluster]]:
    """Clusters on this test's schema, stopped at the end."""
    made: list[Cluster] = []

    def make(**kwargs: Any) -> Cluster:
        made.append(Cluster(tmp_path, schema, **kwargs))
        return made[-1]

    yield make
    for one in made:
        one.stop()
