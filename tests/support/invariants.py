"""The scheduler's state invariants: every index agrees with a full recomputation from the
task records, and nothing hostile input can reach is left inconsistent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from luigid.core.indexes import rank_key
from luigid.core.model import (
    BATCH_RUNNING,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    STATUSES,
    UNKNOWN,
    UPSTREAM_DISABLED,
    UPSTREAM_FAILED,
    Task,
)
from luigid.core.replies import in_pieces
from luigid.core.rpc import Fragments
from luigid.scheduler import Scheduler


def check_invariants(sched: Scheduler, workers: Iterable[str] = ()) -> None:
    """Fail on the first broken invariant; ``workers`` are ids to check even if they hold no task."""
    state = sched.state
    tasks = {t.id: t for t in state.tasks()}

    # status index: every task exactly once, under its status, in status-entry order
    seen: Counter[str] = Counter()
    for status in STATUSES:
        listed = list(state.tasks_by_status(status))
        assert all(t.status == status for t in listed), status
        assert [t.seq for t in listed] == sorted(t.seq for t in listed), status
        seen.update(t.id for t in listed)
        # the entry lists a scan walks hold the same tasks, in the same order
        assert [t for chunk in state.walk([status], step=7) for t in chunk] == listed, status
    assert seen == Counter(tasks.keys())
    # and the list of every task, in the state's order (the whole graph's roots)
    assert [t for chunk in state.walk_all(step=7) for t in chunk] == list(tasks.values())

    for task in tasks.values():
        if task.status in (RUNNING, BATCH_RUNNING):
            assert task.worker_running, f"{task.id} is {task.status} without a worker"
        for amount in [*(task.resources or {}).values(), *(task.resources_running or {}).values()]:
            assert amount >= 0, (task.id, task.resources, task.resources_running)
        missing = [d for d in task.deps if d not in tasks]
        if missing and task.family:  # a task with no family yet is itself shown as a placeholder
            # a dep the scheduler has no record of is shown as an UNKNOWN placeholder
            # as dep_graph shows it, without its prune
            graph = Fragments(in_pieces(sched.replies.walk_graph([task.id]))).collect()
            for dep in missing:
                assert dep in graph, (task.id, dep)
                assert graph[dep]["status"] == UNKNOWN
    for name, usage in sched.resources().items():
        assert usage["used"] >= 0, (name, usage)

    # reverse deps
    for task in tasks.values():
        # deps and runners are tuples: each id once
        assert len(set(task.deps)) == len(task.deps), task.deps
        assert len(set(task.workers)) == len(task.workers), task.workers
        for dep in task.deps:
            assert task.id in state.dependents(dep)
    for dep_id in state.indexes.rdeps:
        users = state.dependents(dep_id)
        assert users and all(dep_id in tasks[u].deps for u in users)
        # one dependent is kept as the id itself, never as a set of one
        assert type(state.indexes.rdeps[dep_id]) is str or len(users) > 1

    # readiness
    def ready(t: Task) -> bool:
        return t.status == PENDING and all(d in tasks and tasks[d].status == DONE for d in t.deps)

    for task in tasks.values():
        assert task.unmet == sum(1 for d in task.deps if d not in tasks or tasks[d].status != DONE)
        assert (task.ready_key is not None) == ready(task)
        if task.ready_key is not None:
            assert task.ready_key == rank_key(task)
    expected = sorted((t for t in tasks.values() if ready(t)), key=rank_key)
    assert list(state.ready_tasks()) == expected

    # per-worker loads and ready lists
    for worker_id in {w for t in tasks.values() for w in t.workers} | set(workers):
        mine = [t for t in tasks.values() if worker_id in t.workers]
        load = state.load_of(worker_id)
        for status, (count, unique, last) in {
            PENDING: (load.pending, load.pending_unique, load.pending_last),
            FAILED: (load.failed, load.failed_unique, load.failed_last),
        }.items():
            of_status = [t for t in mine if t.status == status]
            assert count == len(of_status)
            assert unique == sum(len(t.workers) == 1 for t in of_status)
            assert last == sum(next(reversed(t.workers)) == worker_id for t in of_status)
        assert load.pending_res == sum(1 for t in mine if t.status == PENDING and t.resources)
        assert list(state.ready_tasks(worker_id)) == [t for t in expected if worker_id in t.workers]

    # worker task sets mirror task.workers; stakes mirror stakeholders
    for worker in state.workers():
        assert {t.id for t in worker.tasks} == {t.id for t in tasks.values() if worker.id in t.workers}
    for worker_id, staked in state.indexes.stakes.items():
        assert staked == {t.id for t in tasks.values() if worker_id in t.stakeholders}

    # a task names only known workers, or ones prune removed and is still working through
    known = {w.id for w in state.workers()} | {d.worker_id for d in state.departures}
    for task in tasks.values():
        assert set(task.workers) | task.stakeholders <= known

    check_ui_counts(sched)


def _acyclic(tasks: dict[str, Task]) -> bool:
    """True when the dependencies among known tasks form no cycle."""
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    for start in tasks:
        stack = [(start, iter(sorted(tasks[start].deps)))]
        if state.get(start):
            continue
        state[start] = 1
        while stack:
            node, deps = stack[-1]
            dep = next((d for d in deps if d in tasks), None)
            if dep is None:
                state[node] = 2
                stack.pop()
            elif state.get(dep) == 1:
                return False
            elif not state.get(dep):
                state[dep] = 1
                stack.append((dep, iter(sorted(tasks[dep].deps))))
    return True


def check_ui_counts(sched: Scheduler) -> None:
    """The UI's counters (luigid.core.uicounts) once their backlog is worked through: every
    task counted once under its box and family; on a DAG, the upstream boxes luigi's own
    walk gives; and the browser's default order, the full sort's."""
    state = sched.state
    ui = state.ui
    while ui.settle(3):  # in small steps, as the server does
        pass
    tasks = {t.id: t for t in state.tasks()}
    memo: dict[str, str] = {}
    check_upstream = _acyclic(tasks)
    expected: Counter[tuple[str, str]] = Counter()
    for task in tasks.values():
        box = task.status
        if task.status == PENDING:
            if check_upstream:
                upstream = sched.replies._upstream_status(task.id, memo)
                wanted = upstream if upstream in (UPSTREAM_FAILED, UPSTREAM_DISABLED) else ""
                assert task.upstream == wanted, (task.id, task.upstream, upstream)
            box = task.upstream or PENDING
        assert task.counted == (box, task.family), (task.id, task.counted)
        expected[(box, task.family)] += 1
    counted = Counter({(box, family): n for box, fams in ui.families.items() for family, n in fams.items()})
    assert counted == expected
    assert all(n >= 0 for n in ui.totals.values())
    assert {b: n for b, n in ui.totals.items() if n} == dict(Counter(box for box, _ in expected.elements()))
    newest = sorted(tasks.values(), key=lambda t: (t.updated, t.id), reverse=True)
    for status in STATUSES:
        shown = [t for t in state.newest_first(status) if isinstance(t, Task)]
        assert shown == [t for t in newest if t.status == status], status
