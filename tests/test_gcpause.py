"""The daemon's garbage-collector policy: survivors of a slow full collection are frozen."""

from __future__ import annotations

import gc

import pytest

from luigid import gcpause


@pytest.fixture
def policy_removed_after():
    before = list(gc.callbacks)
    yield
    gc.callbacks[:] = before
    gc.unfreeze()


def test_survivors_of_a_slow_full_collection_are_frozen(policy_removed_after):
    gc.unfreeze()
    kept = [[index] for index in range(1000)]  # tracked, alive: survivors
    gcpause.freeze_after_slow_collections(threshold=0.0)  # every full collection counts as slow
    gc.collect(1)
    assert gc.get_freeze_count() == 0  # younger collections are left alone
    gc.collect()
    assert gc.get_freeze_count() >= len(kept)


def test_fast_full_collections_freeze_nothing(policy_removed_after):
    gc.unfreeze()
    gcpause.freeze_after_slow_collections(threshold=3600.0)
    gc.collect()
    assert gc.get_freeze_count() == 0


def test_the_policy_is_installed_once(policy_removed_after):
    gcpause.freeze_after_slow_collections()
    gcpause.freeze_after_slow_collections()
    assert sum(isinstance(c, gcpause._SlowCollections) for c in gc.callbacks) == 1
