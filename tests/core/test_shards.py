"""The sharded set long jobs keep ids in (the prune queue, the graph walk)."""

from __future__ import annotations

import pickle

import pytest

from luigid.core import shards
from luigid.core.shards import ShardedSet


def test_it_behaves_as_a_set() -> None:
    ids = ShardedSet(["B", "A", "B"])
    assert len(ids) == 2
    assert ids.add("C") and not ids.add("A")
    assert "C" in ids and "D" not in ids and 7 not in ids
    assert ids.discard("A") and not ids.discard("A")
    assert sorted(ids) == ["B", "C"] and len(ids) == 2


def test_many_ids_are_spread_over_the_shards() -> None:
    """No one set holds them all, so none regrows a table of every member in one step."""
    members = [f"Task_{i}" for i in range(10_000)]
    ids = ShardedSet(members)
    sizes = [len(shard) for shard in ids._shards]
    assert len(sizes) == shards.SHARDS
    assert max(sizes) < 3 * len(members) // shards.SHARDS
    assert sum(sizes) == len(ids) == len(members)


def test_a_copy_holds_the_same_members() -> None:
    ids = ShardedSet(f"T_{i}" for i in range(300))
    copy = pickle.loads(pickle.dumps(ids))
    assert sorted(copy) == sorted(ids) and len(copy) == 300


def test_a_big_set_is_emptied_a_shard_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "CLEAR_AT_ONCE", 100)
    ids = ShardedSet(f"T_{i}" for i in range(1000))
    steps = ids.clear_stepwise()
    next(steps)
    assert 0 < len(ids) < 1000 and len(ids) == sum(len(shard) for shard in ids._shards)
    assert sum(1 for _ in steps) == shards.SHARDS - 1
    assert len(ids) == 0 and not list(ids)


def test_a_small_set_is_emptied_in_one_step() -> None:
    ids = ShardedSet(f"T_{i}" for i in range(1000))
    assert list(ids.clear_stepwise()) == []
    assert len(ids) == 0 and not list(ids)
