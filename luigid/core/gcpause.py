"""Keeping the cyclic garbage collector from holding the event loop.

A full collection walks every tracked object that is not frozen (hundreds of milliseconds at
scale: docs/performance.md, "Figures behind the code") and finds nothing to free: scheduler
records hold no reference cycles. Hence:

- ``paused()`` around bulk work. Building a 100k-task reply allocates hundreds of thousands of
  small dicts, and every few hundred allocations the collector would walk the young generation,
  now and then everything. Nothing such a reply builds forms cycles (reference counting frees
  it), so collection is switched off for the duration. Pauses nest: overlapping bulk replies
  (streamed replies interleave) turn collection back on only when the last one ends, and only
  if it was on when the first began. What a pause leaves alive waits in the young generation
  until it ends: when that is more than ``FREEZE_YOUNG_ABOVE`` objects (the first whole graph
  fills every task's reply cache, about 2.7 tracked objects per task: cache entry, sorted
  edges, display name), or the pause lasted over ``FREEZE_AFTER_PAUSE``, it is frozen at
  once, rather than walked by the next young, middle and full collections in turn.
- ``freeze_after_slow_collections()`` while a graph grows: the survivors of a slow full
  collection are frozen, so the next one walks only what arrived since.
- ``collect_young()`` after each step of work that replaces frozen objects: see there.
- ``unwalked()`` for a long-lived container of up to many tasks (the reply cache's slots and
  the set of a compaction pass, a UI scan's sorted runs): frozen at once, so no collection run
  by a request walks it, however it grows in place afterwards.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar


class _Pause:
    depth = 0
    resume = False
    began = 0.0


#: A pause that ends with more objects than this in the young generation freezes them.
#: Below it the next young collection walks them in a few milliseconds.
FREEZE_YOUNG_ABOVE = 20_000
#: A pause longer than this (seconds) freezes the young generation whatever it holds: bulk
#: work across many pieces (a whole graph), whose pile the count may not show (see
#: ``young_objects``), and which listing would take 10-20 ms to measure at 1M tasks.
FREEZE_AFTER_PAUSE = 0.1


@contextmanager
def paused() -> Iterator[None]:
    if _Pause.depth == 0:
        _Pause.resume = gc.isenabled()
        _Pause.began = time.perf_counter()
        gc.disable()
    _Pause.depth += 1
    try:
        yield
    finally:
        _Pause.depth -= 1
        if _Pause.depth == 0 and _Pause.resume:
            _freeze_if_piled_up()
            gc.enable()


def _freeze_if_piled_up() -> None:
    """Freeze the young generation when a pause left a pile in it. Freezing moves lists,
    walking nothing. What a pause keeps is long-lived (reply cache entries, a scan's runs),
    and what it drops reference counting frees (it makes no cycles); requests interleaved
    with a streamed reply run inside its pause, but left no cyclic garbage in it either
    (docs/performance.md, "Stalls at one million tasks"), so nothing is kept that a
    collection would have freed."""
    lasted = time.perf_counter() - _Pause.began
    if lasted > FREEZE_AFTER_PAUSE or gc.get_count()[0] > FREEZE_YOUNG_ABOVE:
        gc.freeze()


def young_objects() -> int:
    """How many objects the young generation holds. Not the collector's count, which is
    allocations minus deallocations: work that frees a frozen object for each one it makes
    (a reply over more tasks than the reply cache holds evicts one entry per entry it
    caches) keeps the count flat while the young generation grows (250k objects after a
    whole graph at 1M tasks, with a count under 700). Listing them costs 10-20 ms at that
    size; a collection walking them, 90."""
    return len(gc.get_objects(generation=0))


#: A full collection slower than this freezes what survived it.
SLOW_FULL_COLLECTION = 0.01


class _SlowCollections:
    """The gc callback behind ``freeze_after_slow_collections``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self.started = time.perf_counter()
        elif time.perf_counter() - self.started > self.threshold:
            # Survivors of a full collection are long-lived (tasks, workers); the young
            # generations are empty now, so no garbage goes with them. The next full
            # collection then walks only what arrived since: while a big graph is being
            # added, collections stay below the threshold instead of growing with it.
            gc.freeze()


def freeze_after_slow_collections(threshold: float = SLOW_FULL_COLLECTION) -> None:
    """From now on, freeze the survivors of every full collection that took longer than
    ``threshold`` seconds (the daemon's policy, as its periodic freeze after pruning)."""
    if not any(isinstance(callback, _SlowCollections) for callback in gc.callbacks):
        gc.callbacks.append(_SlowCollections(threshold))


def collect_young() -> None:
    """Keep the young generation small now, unless collection is paused or off: collect
    it, or freeze it if something left a pile in it.

    Called after every step of work that replaces frozen objects with new ones (a prune
    round taking a departed fleet off a million tasks makes each ready task a new rank key):
    the collector's count stays flat meanwhile (``young_objects``), so without it one
    collection would walk them all, whenever some other allocation tipped it (292k objects,
    100-180 ms at 1M tasks). So it walks one step's worth (well under 1 ms)."""
    if not gc.isenabled():
        return
    if young_objects() > FREEZE_YOUNG_ABOVE:
        gc.freeze()
    else:
        gc.collect(0)


C = TypeVar("C")


def unwalked(container: C) -> C:
    """``container``, frozen: no collection walks it; reference counting still frees it and
    what it holds. Freezing moves whole generations, not objects one by one: a container
    changed in place later (appends, adds, a set's table grown) stays where it is, so it
    stays unwalked. The rest of the heap is frozen with it, as at the end of a pause that
    left a pile: a young collection first would walk that pile in the same step (60 ms at
    200k tasks while the first whole graph fills the reply cache)."""
    gc.freeze()
    return container
