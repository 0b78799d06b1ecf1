"""Helpers for the metrics tests: a parsed /metrics view and scheduler-like task runs."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from luigid.core.model import DONE, Task


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


def run_for(task: Task, seconds: float, status: str = DONE) -> Task:
    """Mark ``task`` as having run for ``seconds`` and ended in ``status``, as the scheduler would."""
    task.time_running = 1000.0
    task.updated = 1000.0 + seconds
    task.status = status
    return task
