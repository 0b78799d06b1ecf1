"""Every index the state keeps agrees with a full recomputation from the task records,
after random sequences of the calls workers and operators make (issue: scale)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luigid.config import SchedulerConfig
from luigid.scheduler import Scheduler
from tests.support import FakeClock, check_invariants

TASKS = [f"T{i}" for i in range(12)]
WORKERS = ["w1", "w2", "w3"]
STATUS_SENT = ["PENDING", "DONE", "FAILED", "RUNNING", "SUSPENDED", "DISABLED"]

task_ids = st.sampled_from(TASKS)
workers = st.sampled_from(WORKERS)

operations = st.one_of(
    st.tuples(
        st.just("add_task"),
        task_ids,
        workers,
        st.sampled_from(STATUS_SENT),
        st.lists(task_ids, max_size=3),
        st.integers(0, 3),
        st.sampled_from([{}, {"r": 1}, {"r": 2}]),
        st.booleans(),
    ),
    st.tuples(st.just("get_work"), workers, st.booleans()),
    st.tuples(st.just("new_deps"), task_ids, workers, st.lists(task_ids, min_size=1, max_size=2)),
    st.tuples(
        st.just("admin"), st.sampled_from(["mark_as_done", "forgive_failures", "re_enable_task"]), task_ids
    ),
    st.tuples(st.just("disable_worker"), workers),
    st.tuples(st.just("tick"), st.sampled_from([1, 30, 200, 700, 5000])),
    st.tuples(st.just("prune")),
    st.tuples(st.just("prune_slice")),
)


def apply(sched: Scheduler, clock: FakeClock, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "add_task":
        _, task_id, worker, status, deps, priority, resources, runnable = op
        deps = [d for d in deps if d != task_id]
        sched.add_task(
            task_id=task_id,
            worker=worker,
            status=status,
            deps=deps,
            priority=priority,
            resources=resources,
            runnable=runnable,
            family=task_id[:1],
            params={"i": task_id},
        )
    elif kind == "get_work":
        _, worker, assistant = op
        sched.get_work(worker=worker, host="h", assistant=assistant, current_tasks=[])
    elif kind == "new_deps":
        _, task_id, worker, deps = op
        sched.add_task(
            task_id=task_id, worker=worker, status="PENDING", new_deps=[d for d in deps if d != task_id]
        )
    elif kind == "admin":
        getattr(sched, op[1])(task_id=op[2])
    elif kind == "disable_worker":
        sched.disable_worker(worker=op[1])
    elif kind == "tick":
        clock.now += op[1]
    elif kind == "prune":
        while sched.prune_slice(1):  # a whole round, in steps of pruner.step tasks
            pass
    elif kind == "prune_slice":
        sched.prune_slice(1)  # one step: a round left under way, maybe mid-departure


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(operations, min_size=1, max_size=60))
def test_indexes_agree_with_a_full_scan(
    monkeypatch_clock: Callable[[], tuple[FakeClock, Scheduler]], ops: list[tuple[Any, ...]]
) -> None:
    clock, sched = monkeypatch_clock()
    for op in ops:
        apply(sched, clock, op)
        check_invariants(sched, WORKERS)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(operations, min_size=1, max_size=40))
def test_indexes_rebuilt_after_reload(
    monkeypatch_clock: Callable[[], tuple[FakeClock, Scheduler]],
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[Any, ...]],
) -> None:
    clock, sched = monkeypatch_clock()
    for op in ops:
        apply(sched, clock, op)
    path = tmp_path_factory.mktemp("state") / "state.pickle"
    sched2 = Scheduler(SchedulerConfig(state_path=str(path)), resources={"r": 2})
    sched.config = sched2.config
    sched.state.config = sched2.config
    sched.dump()
    sched2.load()
    check_invariants(sched2, WORKERS)
    assert {t.id: t.status for t in sched2.state.tasks()} == {t.id: t.status for t in sched.state.tasks()}


def _patched_scheduler(monkeypatch: Any) -> Any:
    def make() -> tuple[FakeClock, Scheduler]:
        clock = FakeClock(1_000_000.0).install(monkeypatch)
        config = SchedulerConfig(
            retry_delay=100,
            remove_delay=600,
            worker_disconnect_delay=60,
            retry_count=3,
            disable_window=1000,
            disable_persist=2000,
            stable_done_cooldown_secs=0,
        )
        sched = Scheduler(config, resources={"r": 2})
        sched.pruner.step = 2  # rounds take several steps, so ops land between them
        return clock, sched

    return make


@pytest.fixture
def monkeypatch_clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Builds a fresh scheduler on a fresh test clock for each generated example."""
    return _patched_scheduler(monkeypatch)
