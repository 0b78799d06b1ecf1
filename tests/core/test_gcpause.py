"""The daemon's garbage-collector policy: survivors of a slow full collection are frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from luigid.core import gcpause


@pytest.fixture
def policy_removed_after() -> Iterator[None]:
    """No policy installed when the test starts (an earlier one would make installing a
    no-op), and the callbacks as they were afterwards."""
    before = list(gc.callbacks)
    gc.callbacks[:] = [c for c in before if not isinstance(c, gcpause._SlowCollections)]
    yield
    gc.callbacks[:] = before
    gc.unfreeze()


def _installed() -> list[gcpause._SlowCollections]:
    return [c for c in gc.callbacks if isinstance(c, gcpause._SlowCollections)]


def test_survivors_of_a_slow_full_collection_are_frozen(policy_removed_after: None) -> None:
    gc.unfreeze()
    kept = [[index] for index in range(1000)]  # tracked, alive: survivors
    gcpause.freeze_after_slow_collections(threshold=0.0)  # every full collection counts as slow
    assert [c.threshold for c in _installed()] == [0.0]
    gc.collect(1)
    assert gc.get_freeze_count() == 0  # younger collections are left alone
    gc.collect()
    assert gc.get_freeze_count() >= len(kept)


def test_fast_full_collections_freeze_nothing(policy_removed_after: None) -> None:
    gc.unfreeze()
    gcpause.freeze_after_slow_collections(threshold=3600.0)
    assert [c.threshold for c in _installed()] == [3600.0]
    gc.collect()
    assert gc.get_freeze_count() == 0


def test_the_policy_is_installed_once(policy_removed_after: None) -> None:
    gcpause.freeze_after_slow_collections()
    gcpause.freeze_after_slow_collections()
    assert sum(isinstance(c, gcpause._SlowCollections) for c in gc.callbacks) == 1


@pytest.mark.parametrize("enabled_before", [True, False])
def test_pauses_nest_and_restore_what_was_there(enabled_before: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled_before else gc.disable)()
    try:
        with gcpause.paused():
            assert not gc.isenabled()
            with gcpause.paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the outer pause still holds
        assert gc.isenabled() is enabled_before
    finally:
        (gc.enable if was else gc.disable)()


def test_an_unwalked_list_is_out_of_every_collections_reach_and_freezes_no_garbage() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    class Item:
        pass

    gc.collect()
    try:
        dead = Cycle()  # young cyclic garbage: collected, not frozen with the copy
        gone = weakref.ref(dead)
        del dead
        items = [Item() for _ in range(1000)]
        copy = gcpause.unwalked_list(iter(items))
        assert copy == items and copy is not items
        assert gone() is None
        assert not any(o is copy for o in gc.get_objects())  # in no generation: frozen
        first = weakref.ref(items[0])
        del items, copy
        assert first() is None  # refcounting still frees it
    finally:
        gc.unfreeze()
