"""The daemon's garbage-collector policy: survivors of a slow full collection are frozen, and
so is what a bulk pause leaves piled up in the young generation."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from luigid.core import gcpause, replycache
from luigid.core.rpc import RPC_METHODS
from luigid.scheduler import Scheduler

from .support import add


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


def _walked_ids() -> set[int]:
    """Ids of every object a collection may walk (frozen ones are in no generation)."""
    return {id(o) for o in gc.get_objects()}


def test_a_pause_that_leaves_a_pile_of_young_objects_freezes_them(collector_on: None) -> None:
    class Item:
        pass

    with gcpause.paused():
        kept = [Item() for _ in range(gcpause.FREEZE_YOUNG_ABOVE + 1000)]
    assert gc.isenabled()
    walked = _walked_ids()
    assert not any(id(item) in walked for item in kept)  # frozen: no collection walks them
    first = weakref.ref(kept[0])
    del kept
    assert first() is None  # refcounting still frees them


def test_a_pause_that_leaves_little_freezes_nothing_and_its_cycles_are_collected(collector_on: None) -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    with gcpause.paused():
        kept = [[index] for index in range(100)]
        dead = Cycle()
        gone = weakref.ref(dead)
        del dead
    assert gc.get_freeze_count() == 0
    walked = _walked_ids()
    assert all(id(item) in walked for item in kept)
    gc.collect()
    assert gone() is None


def test_a_pause_inside_a_disabled_collector_freezes_nothing(collector_on: None) -> None:
    gc.disable()
    with gcpause.paused():
        kept = [[index] for index in range(gcpause.FREEZE_YOUNG_ABOVE + 1000)]
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0  # whoever turned the collector off manages it
    assert len(kept) > gcpause.FREEZE_YOUNG_ABOVE


def test_no_collection_walks_the_cache_entries_the_first_whole_graph_makes(
    collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first whole graph fills every task's reply cache while the collector is paused
    for the streamed reply (``write_pieces``); at a million tasks the young, middle and full
    collections after the pause walked those entries in turn (385 ms of one request)."""
    # no slot-list compaction during this graph: it freezes what lives, which would hide the pile
    monkeypatch.setattr(replycache, "MIN_COMPACTION", 10_000)
    s = Scheduler(record_task_history=False)
    for n in range(3000):
        add(s, f"Job_{n}", deps=[f"Job_{n - 1}"] if n else [])
    gc.collect()
    monkeypatch.setattr(gcpause, "FREEZE_YOUNG_ABOVE", 5000)  # 3,000 tasks leave ~8,000
    with gcpause.paused():  # as write_pieces streams it
        for _ in RPC_METHODS["graph"].invoke(s, {}):
            pass
    entries = [task.encoded for task in s.state.tasks()]
    assert all(entry is not None for entry in entries)
    walked = _walked_ids()
    assert not any(id(entry) in walked for entry in entries)
    assert not any(id(entry.edges) in walked for entry in entries)


def test_a_container_made_unwalked_stays_so_while_it_grows_in_place(collector_on: None) -> None:
    items: list[list[int]] = gcpause.unwalked([])
    numbers: set[int] = gcpause.unwalked(set())
    for n in range(5000):  # the list's array and the set's table are reallocated on the way
        items.append([n])
        numbers.add(n)
    gc.collect()
    walked = _walked_ids()
    assert id(items) not in walked and id(numbers) not in walked
    assert all(id(item) in walked for item in items)  # only what was there at the freeze is frozen


def test_no_collection_walks_the_reply_cache_slots_or_a_pass_under_way(collector_on: None) -> None:
    s = Scheduler(record_task_history=False)
    for n in range(3 * replycache.MIN_COMPACTION):
        add(s, f"Job_{n}")
    cache = s.state.reply_cache
    for task in s.state.tasks():
        s.replies.encode(task)
        if cache._kept is not None:
            break
    assert cache._kept is not None, "no compaction pass began"
    s.replies.encode(next(t for t in s.state.tasks() if t.encoded is None))  # a step of it
    gc.collect()
    walked = _walked_ids()
    assert id(cache._slots) not in walked and id(cache._kept) not in walked


def _replace_frozen(count: int) -> list[list[int]]:
    """``count`` new tracked objects, each freeing a frozen one it replaces: the collector's
    count stays flat while the young generation grows by ``count``."""
    items = [[index] for index in range(count)]
    gc.freeze()
    for index in range(count):
        items[index] = [index]
    return items


def test_a_long_pause_freezes_its_pile_though_the_count_shows_none(
    collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole graph over more tasks than the reply cache holds: each entry cached evicts one."""
    monkeypatch.setattr(gcpause, "FREEZE_AFTER_PAUSE", 0.0)  # every pause counts as long
    with gcpause.paused():
        kept = _replace_frozen(1000)
        assert gc.get_count()[0] < 700  # the collector's count saw nothing pile up
    walked = _walked_ids()
    assert not any(id(item) in walked for item in kept)


def test_collect_young_walks_a_step_of_replacements(collector_on: None) -> None:
    items = _replace_frozen(5000)
    assert gcpause.young_objects() >= len(items)  # no collection came on its own
    frozen = gc.get_freeze_count()
    gcpause.collect_young()
    assert gcpause.young_objects() < 100
    assert gc.get_freeze_count() == frozen  # collected, not frozen


def test_collect_young_freezes_a_pile_rather_than_walk_it(collector_on: None) -> None:
    items = _replace_frozen(gcpause.FREEZE_YOUNG_ABOVE + 1000)
    gcpause.collect_young()
    walked = _walked_ids()
    assert not any(id(item) in walked for item in items)


def test_collect_young_leaves_a_pause_alone(collector_on: None) -> None:
    with gcpause.paused():
        kept = [[index] for index in range(1000)]
        gcpause.collect_young()
        assert gcpause.young_objects() >= len(kept)
