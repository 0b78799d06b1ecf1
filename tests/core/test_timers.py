"""The prune queue's set of tasks that may have lost their last stakeholder."""

from __future__ import annotations

import pickle

import pytest

from luigid.core.timers import Unmarked


def drain(unmarked: Unmarked) -> list[str]:
    taken = []
    while unmarked:
        taken.append(unmarked.pop())
    return taken


def test_ids_come_out_smallest_first_once_each() -> None:
    unmarked = Unmarked(["T_5", "T_1"])
    for task_id in ("T_3", "T_1", "T_9", "T_3"):
        unmarked.add(task_id)
    assert len(unmarked) == 4
    assert "T_9" in unmarked and "T_2" not in unmarked and 7 not in unmarked
    assert sorted(unmarked) == ["T_1", "T_3", "T_5", "T_9"]
    assert drain(unmarked) == ["T_1", "T_3", "T_5", "T_9"]


def test_a_discarded_id_is_skipped_and_may_come_back() -> None:
    unmarked = Unmarked(["A", "B", "C"])
    unmarked.discard("B")
    unmarked.discard("Z")  # never there
    assert len(unmarked) == 2
    assert unmarked.pop() == "A"
    unmarked.add("B")
    assert drain(unmarked) == ["B", "C"]
    with pytest.raises(KeyError):
        unmarked.pop()


def test_a_copy_pickled_by_an_older_luigid_is_taken() -> None:
    """Then the ids were one set beside the heap."""
    old = Unmarked.__new__(Unmarked)
    old.__dict__.update({"_ids": {"B", "A"}, "_heap": ["A", "B", "X"]})
    copy = pickle.loads(pickle.dumps(old))
    assert len(copy) == 2
    assert drain(copy) == ["A", "B"]


def test_a_copy_goes_on_where_the_original_stood() -> None:
    unmarked = Unmarked(["C", "A", "B"])
    assert unmarked.pop() == "A"
    copy = pickle.loads(pickle.dumps(unmarked))
    assert drain(copy) == drain(unmarked) == ["B", "C"]
