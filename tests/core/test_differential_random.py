"""Random call sequences, replayed against luigi's Scheduler and ours, must get the same replies.

Hypothesis draws sequences of worker and admin calls over a handful of tasks and workers,
with the clock jumping across every configured delay. Dependencies only name tasks that
already exist: placeholders created in one call share one timestamp, and luigi then orders
equal-rank tasks by set iteration, which is arbitrary on both sides.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from .support import START, UPSTREAM_STATUSES, LuigiCrashed, Twin

TASKS = [f"T_{i}" for i in range(6)]
WORKERS = ["w1", "w2", "w3"]
STATUSES = ["PENDING", "PENDING", "DONE", "FAILED", "RUNNING", "DISABLED", "SUSPENDED", "UNKNOWN"]
CONFIG = {
    "retry_delay": 30,
    "remove_delay": 200,
    "worker_disconnect_delay": 60,
    "retry_count": 3,
    "disable_window": 100,
    "disable_persist": 300,
    "stable_done_cooldown_secs": 10,
}

ops = st.one_of(
    st.tuples(
        st.just("add"),
        st.sampled_from(WORKERS),
        st.integers(0, len(TASKS) - 1),
        st.sampled_from(STATUSES),
        st.lists(st.integers(0, len(TASKS) - 1), max_size=3, unique=True),
        st.sampled_from([0, 1, 5]),
        st.sampled_from([{}, {"r": 1}, {"r": 2}, {"other": 1}]),
        st.sampled_from([True, True, False, None]),
        st.booleans(),  # assistant
        st.booleans(),  # batchable
        st.sampled_from([None, 1]),  # per-task retry_count
    ),
    st.tuples(
        st.just("work"),
        st.sampled_from(WORKERS),
        st.booleans(),
        st.sampled_from(["none", "empty", "all"]),
    ),
    st.tuples(st.just("tick"), st.sampled_from([0, 1, 5, 11, 31, 61, 101, 201, 301])),
    st.tuples(st.just("prune")),
    st.tuples(
        st.just("admin"),
        st.sampled_from(["mark_as_done", "forgive_failures", "re_enable_task"]),
        st.integers(0, len(TASKS) - 1),
    ),
    st.tuples(st.just("disable_worker"), st.sampled_from(WORKERS)),
    st.tuples(st.just("batcher"), st.sampled_from(WORKERS), st.sampled_from([2, 3])),
    st.tuples(st.just("claim_batch"), st.sampled_from(["DONE", "FAILED", "RUNNING"])),
    st.tuples(st.just("decrease"), st.integers(0, len(TASKS) - 1)),
    st.tuples(st.just("ping"), st.sampled_from(WORKERS)),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("update_resource"), st.sampled_from([0, 1, 3])),
    st.tuples(st.just("view"), st.integers(0, len(TASKS) - 1)),
    st.tuples(st.just("add_worker"), st.sampled_from(WORKERS), st.sampled_from([1, 2, 3])),
    st.tuples(
        st.just("report"),
        st.integers(0, len(TASKS) - 1),
        st.sampled_from(WORKERS),
        st.sampled_from(["DONE", "FAILED", "PENDING"]),
        st.lists(st.integers(0, len(TASKS) - 1), max_size=2, unique=True),
    ),
    st.tuples(st.just("progress"), st.integers(0, len(TASKS) - 1), st.integers(0, 100)),
)


class Replayer:
    def __init__(self, twin: Twin, placeholders: bool) -> None:
        self.twin = twin
        #: when set, deps may name unknown tasks; every task then holds a zero-sized resource so
        #: both schedulers take the (deterministically ordered) non-trivial get_work path
        self.placeholders = placeholders
        self.known: set[str] = set()
        self.batches: list[str] = []
        self.claims = 0

    def call(self, method: str, **kwargs: Any) -> Any:
        try:
            return self.twin.same(method, **kwargs)
        except LuigiCrashed:
            # luigi itself crashed on this input (e.g. a batch claim with no batch left):
            # the two states may now differ for reasons that are not ours to mirror
            assume(False)

    def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        t = self.twin
        if kind == "add":
            _, worker, index, status, deps, prio, res, runnable, assistant, batchable, retries = op
            task_id = TASKS[index]
            t.clock.advance(1)
            dep_ids = [TASKS[d] for d in deps if (self.placeholders or TASKS[d] in self.known) and d != index]
            if self.placeholders:
                res = {**res, "z": 0}
            self.call(
                "add_task",
                task_id=task_id,
                worker=worker,
                status=status,
                deps=dep_ids,
                priority=prio,
                resources=res,
                runnable=runnable,
                assistant=assistant,
                batchable=batchable,
                family="T",
                module="m",
                params={"p": str(index), "q": "x"},
                retry_policy_dict={"retry_count": retries},
                expl='"why"' if status == "FAILED" else None,
            )
            self.known.add(task_id)
        elif kind == "work":
            _, worker, assistant, current = op
            running = sorted(t.ours.task_search(task_str="T_").get("RUNNING", {}))
            current_tasks = {"none": None, "empty": [], "all": running}[current]
            reply = self.call(
                "get_work", worker=worker, host="h", assistant=assistant, current_tasks=current_tasks
            )
            if reply.get("batch_id"):
                self.batches.append(reply["batch_id"])
        elif kind == "tick":
            t.clock.advance(op[1])
        elif kind == "prune":
            self.call("prune")
        elif kind == "admin":
            self.call(op[1], task_id=TASKS[op[2]])
        elif kind == "disable_worker":
            self.call("disable_worker", worker=op[1])
        elif kind == "batcher":
            self.call(
                "add_task_batcher", worker=op[1], task_family="T", batched_args=["p"], max_batch_size=op[2]
            )
        elif kind == "claim_batch":
            if self.batches:
                self.claims += 1
                batch_task = f"T_batch{self.claims}"
                self.call(
                    "add_task",
                    task_id=batch_task,
                    worker="w1",
                    status="RUNNING",
                    batch_id=self.batches[-1],
                    family="T",
                    params={"p": "*", "q": "x"},
                )
                if op[1] != "RUNNING":
                    self.call(
                        "add_task",
                        task_id=batch_task,
                        worker="w1",
                        status=op[1],
                        runnable=None,
                        family="T",
                        params={"p": "*", "q": "x"},
                    )
        elif kind == "decrease":
            self.call("decrease_running_task_resources", task_id=TASKS[op[1]], decrease_resources={"r": 1})
        elif kind == "ping":
            self.call("ping", worker=op[1])
        elif kind == "pause":
            self.call("pause" if op[1] else "unpause")
        elif kind == "update_resource":
            self.call("update_resource", resource="r", amount=op[1])
        elif kind == "add_worker":
            self.call("add_worker", worker=op[1], info=[["workers", op[2]], ["host", "h"]])
        elif kind == "report":
            # what a worker sends when a run ends: runnable=None, maybe dynamic deps
            _, index, worker, status, new_deps = op
            t.clock.advance(1)
            self.call(
                "add_task",
                task_id=TASKS[index],
                worker=worker,
                status=status,
                runnable=None,
                new_deps=[TASKS[d] for d in new_deps if d != index and TASKS[d] in self.known],
                family="T",
                module="m",
                params={"p": str(index), "q": "x"},
                expl='"ended"',
                tracking_url="http://tracking/" + TASKS[index],
                resources={"z": 0} if self.placeholders else {},
            )
            self.known.add(TASKS[index])
        elif kind == "progress":
            self.call("set_task_progress_percentage", task_id=TASKS[op[1]], progress_percentage=op[2])
            self.call("set_task_status_message", task_id=TASKS[op[1]], status_message=f"at {op[2]}")
            self.call("get_task_progress_percentage", task_id=TASKS[op[1]])
        elif kind == "view":
            task_id = TASKS[op[1]]
            self.call("dep_graph", task_id=task_id)
            self.call("inverse_dep_graph", task_id=task_id, include_done=False)
            self.call("fetch_error", task_id=task_id)
            self.call("task_search", task_str=task_id)
            self.call("worker_list")

    def _cyclic(self) -> bool:
        """Whether luigi's tasks' dependencies hold a cycle."""
        deps = {task.id: set(task.deps) for task in self.twin.theirs._state.get_active_tasks()}
        done: set[str] = set()
        for start in deps:
            path, stack = set(), [(start, iter(deps[start]))]
            path.add(start)
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    path.discard(node)
                    done.add(node)
                elif child in path:
                    return True
                elif child in deps and child not in done:
                    path.add(child)
                    stack.append((child, iter(deps[child])))
        return False

    def compare_views(self) -> None:
        self.call("task_list", status="", upstream_status="")
        if not self._cyclic():
            # On a cycle, luigi's upstream status of a task is that of whichever task its walk
            # pops last, and that follows its dep sets' iteration order, which changes with
            # PYTHONHASHSEED: luigi gives no one answer there to mirror.
            for upstream in UPSTREAM_STATUSES:
                self.call("task_list", status="PENDING", upstream_status=upstream)
        for worker in WORKERS:
            self.call("count_pending", worker=worker)
        self.call("resource_list")
        for task_id in sorted(self.known):
            self.call("get_running_task_resources", task_id=task_id)
            self.call("get_task_status_message", task_id=task_id)
            self.call("fetch_error", task_id=task_id)


# Derandomized (the same examples every run) since a known divergence, below, turned up at
# random in one CI run of three: until it is fixed, a run must not pass or fail by chance.
@settings(
    max_examples=int(os.environ.get("LUIGID_DIFF_EXAMPLES", "150")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(sequence=st.lists(ops, min_size=5, max_size=40), placeholders=st.booleans())
def test_random_sequences_match_luigi(
    make_twin: Callable[..., Twin], sequence: list[tuple[Any, ...]], placeholders: bool
) -> None:
    twin = make_twin(resources={"r": 2}, **CONFIG)
    twin.clock.now = START
    replayer = Replayer(twin, placeholders)
    for op in sequence:
        replayer.run(op)
        replayer.call("task_list", status="", upstream_status="")
    replayer.compare_views()
    replayer.call("graph")
    replayer.call("worker_list")


@pytest.mark.xfail(
    strict=True,
    reason="known divergence: when prune fails the running tasks of a gone worker, luigi emits "
    "their handle_task_failed events in the order the tasks were added to the state, luigid in "
    "the order they entered RUNNING (no cheap index of the former yet)",
)
def test_a_gone_workers_running_tasks_fail_in_luigis_order(make_twin: Callable[..., Twin]) -> None:
    """Found by the random test above (hypothesis), kept as it was found."""
    twin = make_twin(resources={"r": 2}, **CONFIG)
    twin.clock.now = START
    replayer = Replayer(twin, False)
    sequence: list[tuple[Any, ...]] = [
        ("tick", 0),
        ("tick", 0),
        ("add", "w1", 1, "RUNNING", [], 0, {}, True, True, False, 1),
        ("add", "w1", 0, "RUNNING", [], 0, {}, True, False, False, None),
        ("tick", 301),
    ]
    for op in sequence:
        replayer.run(op)
        replayer.call("task_list", status="", upstream_status="")


@pytest.fixture(autouse=True)
def _quiet_luigi_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")
