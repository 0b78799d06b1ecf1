"""Fixtures for the metrics tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from luigid.config import SchedulerConfig
from luigid.core.model import PENDING, Task


@pytest.fixture
def make_task() -> Callable[..., Task]:
    config = SchedulerConfig()

    def build(family: str = "Ingest", status: str = PENDING, **params: Any) -> Task:
        task_id = f"{family}_{'_'.join(str(v) for v in params.values())}"
        return Task(task_id, status, (), config.retry_policy(), family=family, params=params)

    return build
