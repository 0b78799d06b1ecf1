"""Shared helpers for the metrics tests: scheduler-shaped tasks and a parsed /metrics view."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from luigid.config import SchedulerConfig
from luigid.model import DONE, PENDING, Task


def parse_samples(body: bytes | str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text exposition, keyed by (sample name, labels)."""
    text = body.decode() if isinstance(body, bytes) else body
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def make_task():
    config = SchedulerConfig()

    def build(family: str = "Ingest", status: str = PENDING, **params: Any) -> Task:
        task_id = f"{family}_{'_'.join(str(v) for v in params.values())}"
        return Task(task_id, status, (), config.retry_policy(), family=family, params=params)

    return build


def run_for(task: Task, seconds: float, status: str = DONE) -> Task:
    """Mark ``task`` as having run for ``seconds`` and ended in ``status``, as the scheduler would."""
    task.time_running = 1000.0
    task.updated = 1000.0 + seconds
    task.status = status
    return task
