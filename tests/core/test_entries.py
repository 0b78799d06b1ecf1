"""The entry lists a scan walks across steps (luigid.core.entries): the tasks of each status
in status-index order, walked while the state changes between two lists, and compacted a few
entries per write."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterable

from luigid.core import entries
from luigid.core.model import DONE, FAILED, PENDING, STATUSES, Task
from luigid.scheduler import Scheduler
from tests.support.invariants import check_invariants

from .support import add


def _ids(chunks: Iterable[list[Task]]) -> list[str]:
    return [t.id for chunk in chunks for t in chunk]


def test_a_walk_is_the_status_index_in_lists_of_a_step(make_scheduler: Callable[..., Scheduler]) -> None:
    s = make_scheduler()
    for i in range(25):
        add(s, f"T{i:02d}", status=DONE if i % 3 == 0 else PENDING)
    chunks = list(s.state.walk([PENDING, DONE], step=4))
    assert all(len(chunk) <= 4 for chunk in chunks)
    assert _ids(chunks) == [t.id for t in s.state.tasks_by_status(PENDING, DONE)]
    assert sorted(_ids(s.state.walk(step=10))) == sorted(t.id for t in s.state.tasks())


def test_a_walk_shows_each_task_of_its_start_once_while_the_state_changes(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    s = make_scheduler()
    for i in range(40):
        add(s, f"T{i:02d}")
    walk = s.state.walk([PENDING], step=10)
    shown = [t.id for t in next(walk)]  # T00-T09
    assert shown == [f"T{i:02d}" for i in range(10)]
    add(s, "T05", status=DONE)  # left after it was shown: shown once, as it was
    add(s, "T15", status=DONE)  # left before the walk got to it: not shown
    add(s, "T16", status=FAILED)
    add(s, "T16", status=PENDING)  # ... nor when it came back: that entry is after the walk's start
    s.state.remove_tasks(["T25"])
    add(s, "New")  # entered after the start
    for chunk in walk:
        shown.extend(t.id for t in chunk)
    assert shown == [f"T{i:02d}" for i in range(40) if i not in (15, 16, 25)]
    check_invariants(s)


def test_left_entries_are_compacted_a_few_per_write_and_walks_keep_their_lists(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    s = make_scheduler()
    n = 3 * entries.COMPACT_ABOVE
    for i in range(n):
        add(s, f"T{i}")
    walk = s.state.walk([PENDING], step=100)
    first = [t.id for t in next(walk)]
    moved, size = 0, s.state.entries.size(PENDING)
    # back and forth: every move leaves an entry behind in PENDING's list, until it is compacted
    while s.state.entries.size(PENDING) >= size:
        size = s.state.entries.size(PENDING)
        add(s, f"T{moved % n}", status=FAILED)
        add(s, f"T{moved % n}", status=PENDING)
        moved += 1
        assert moved < 20 * n, "never compacted"
    # compacted: about one entry per task again, and never more than about twice that
    assert s.state.entries.size(PENDING) < n + 2 * entries.COMPACT_ABOVE
    check_invariants(s)
    # the walk begun before reads on in the lists it began with: the tasks that stayed put
    rest = [t.id for chunk in walk for t in chunk]
    assert first == [f"T{i}" for i in range(100)]
    assert rest == []  # every task after T99 left (and came back) before the walk got to it
    assert moved > n  # so the compaction ran while tasks kept moving
    assert {t.id for t in s.state.tasks_by_status(PENDING)} == {f"T{i}" for i in range(n)}


def test_entries_are_made_again_after_a_pickle(make_scheduler: Callable[..., Scheduler]) -> None:
    s = make_scheduler()
    for i in range(30):
        add(s, f"T{i}", status=STATUSES[i % 3])
    copy = pickle.loads(pickle.dumps(s))
    assert "entries" not in s.state.__getstate__()
    check_invariants(copy)
    add(copy, "T1", status=DONE)
    check_invariants(copy)


def test_walk_all_keeps_the_state_order_while_tasks_come_and_go(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    s = make_scheduler()
    for i in range(30):
        add(s, f"T{i:02d}", status=DONE if i % 4 == 0 else PENDING)
    assert _ids(s.state.walk_all(step=4)) == [t.id for t in s.state.tasks()]
    walk = s.state.walk_all(step=10)
    shown = [t.id for t in next(walk)]
    add(s, "T12", status=FAILED)  # a status change keeps its place
    s.state.remove_tasks(["T03", "T20"])  # removed: shown once before, not after
    add(s, "T20")  # back, at the end: after the walk's start
    for chunk in walk:
        shown.extend(t.id for t in chunk)
    assert shown == [f"T{i:02d}" for i in range(30) if i != 20]
    assert _ids(s.state.walk_all()) == [t.id for t in s.state.tasks()]
    check_invariants(s)
    copy = pickle.loads(pickle.dumps(s))
    assert _ids(copy.state.walk_all()) == [t.id for t in s.state.tasks()]


def test_the_whole_graph_reads_its_roots_a_step_at_a_time(make_scheduler: Callable[..., Scheduler]) -> None:
    """graph() lists every task as in the state's order, and takes no copy of them all before
    its first piece: tasks removed before their step are not roots any more."""
    s = make_scheduler()
    for i in range(5000):
        add(s, f"T{i:04d}")
    fragments = s.replies.graph()
    first = next(iter(fragments))
    assert isinstance(first, bytes)
    s.state.remove_tasks([f"T{i:04d}" for i in range(4000, 5000)])
    shown = [*json.loads(b"{" + first + b"}"), *fragments.collect()]
    assert shown == [f"T{i:04d}" for i in range(4000)]
