"""``luigid.core.pauses``: a merge of newest-first streams that carry pauses keeps the order
of the tasks and passes each pause on where its stream stood."""

from __future__ import annotations

from collections.abc import Iterator

from luigid.config import SchedulerConfig
from luigid.core.model import PENDING, Task
from luigid.core.pauses import Item, Pause, newest_first_merge


def task(updated: float, task_id: str) -> Task:
    t = Task(task_id, PENDING, (), SchedulerConfig().retry_policy())
    t.updated = updated
    return t


def keys(items: list[Item]) -> list[tuple[float, str]]:
    return [(i.updated, i.id) for i in items]


def test_pauses_keep_their_place_and_the_tasks_their_order() -> None:
    a = [None, task(9, "a9"), task(5, "a5"), None, None, task(1, "a1")]
    b = [task(8, "b8"), None, task(5, "b5"), task(2, "b2"), None]
    merged = list(newest_first_merge(a, b))
    tasks = [i for i in merged if isinstance(i, Task)]
    assert [t.id for t in tasks] == ["a9", "b8", "b5", "a5", "b2", "a1"]
    assert sum(isinstance(i, Pause) for i in merged) == 5
    # a pause sorts where its stream stood, so the whole merge is in order
    assert keys(merged) == sorted(keys(merged), reverse=True)
    assert isinstance(merged[0], Pause)  # a stream that pauses first is not held back


def test_a_merge_reads_one_item_of_a_stream_at_a_time() -> None:
    read: list[str] = []

    def watched(name: str, items: list[Task | None]) -> Iterator[Task | None]:
        for item in items:
            read.append(name)
            yield item

    merged = newest_first_merge(watched("a", [None, None, task(3, "a3")]), watched("b", [task(4, "b4")]))
    assert isinstance(next(merged), Pause)
    assert read == ["a", "b"]  # the heads only
    assert [i.id for i in merged if isinstance(i, Task)] == ["b4", "a3"]
