"""Shared values: one object per equal immutable value tasks hold (issue 14, memory per task)."""

from __future__ import annotations

import pickle

import pytest

from luigid.core import interning
from luigid.core.interning import SharedValues
from luigid.core.model import NO_IDS


def test_equal_values_become_one_object() -> None:
    shared = SharedValues()
    first = shared.get(("w1",))
    assert shared.get(tuple(["w1"])) is first
    assert shared.ids(frozenset({"w1", "w2"})) is shared.ids(frozenset(["w2", "w1"]))
    assert shared.get(("box", "Family")) == ("box", "Family")


def test_empty_values_are_the_shared_empty_ones() -> None:
    shared = SharedValues()
    assert shared.ids(frozenset()) is NO_IDS
    assert shared.get(()) == ()


def test_a_full_table_starts_afresh_and_shares_new_values_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interning, "SHARED_LIMIT", 3)
    shared = SharedValues()
    old = shared.get(("gone",))
    for i in range(3):
        shared.get((f"w{i}",))
    # full: the next value empties the table, and is shared from then on
    today = shared.get(("today",))
    assert shared.get(tuple(["today"])) is today
    again = shared.get(tuple(["gone"]))
    assert again == old and again is not old  # forgotten, so a new object: values never change


def test_a_pickled_copy_starts_with_an_empty_table() -> None:
    shared = SharedValues()
    shared.get(("w1",))
    copy = pickle.loads(pickle.dumps(shared))
    assert copy.get(("w1",)) == ("w1",)
