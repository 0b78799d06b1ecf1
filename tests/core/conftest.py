"""Fixtures for the scheduler unit tests: a clock the test drives, and schedulers built on it."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from luigid.config import SchedulerConfig
from luigid.scheduler import Scheduler

from .support import START, Clock, Twin


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Replace ``time.time`` so every timestamp the scheduler takes is the test's choice."""
    return Clock(START).install(monkeypatch)


@pytest.fixture
def make_scheduler(clock: Clock) -> Callable[..., Scheduler]:
    """``make_scheduler(resources=None, **scheduler_keys)`` -> a luigid Scheduler on the test clock."""

    def make(resources: dict[str, int] | None = None, **settings: Any) -> Scheduler:
        return Scheduler(SchedulerConfig(**settings), resources=dict(resources or {}))

    return make


@pytest.fixture
def sched(make_scheduler: Callable[..., Scheduler]) -> Scheduler:
    """A scheduler with short, round delays that the tests step the clock across."""
    return make_scheduler(retry_delay=100, remove_delay=1000, worker_disconnect_delay=10)


@pytest.fixture
def make_twin(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Twin]:
    """``make_twin(resources=None, **scheduler_keys)`` -> luigi's and luigid's schedulers side by side."""
    monkeypatch.delenv("LUIGI_CONFIG_PATH", raising=False)

    created: list[Twin] = []

    def make(resources: dict[str, int] | None = None, **settings: Any) -> Twin:
        twin = Twin(clock, resources or {}, settings, monkeypatch)
        created.append(twin)
        return twin

    make.created = created  # type: ignore[attr-defined]
    return make


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The cyclic collector on and nothing frozen when the test starts; restored afterwards."""
    was = gc.isenabled()
    gc.enable()
    gc.collect()
    gc.unfreeze()
    yield
    gc.unfreeze()
    (gc.enable if was else gc.disable)()
