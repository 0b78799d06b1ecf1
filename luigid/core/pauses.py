"""Walks of the newest-first order that can hand the event loop back while they skip.

A status's newest-first order is read from lists that keep entries no longer current (tasks
that left the status or the state) until a compaction, which starts only once they may be as
many as the current ones. Those can lie together: after a fleet's 200,000 tasks were removed
at 1M tasks, the first task to show sat behind all of them, and one step of the UI's walk
skipped them all (130 ms, in process). So a source yields ``None`` after
every ``LOOK_STEP`` entries it skipped (``thinned``), and ``newest_first_merge`` turns each into a
``Pause`` at the place in the order where it was met. The reader at the top (the UI's walk)
pauses at each ``Pause`` and shows only tasks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator

from luigid.core.model import Task

#: Entries a source may skip before it yields ``None``: a few milliseconds at most.
LOOK_STEP = 2000


class Pause:
    """A place to pause in a merged walk. It sorts where its source stood: with the key of
    the last item that source gave (nothing it gives later sorts above it), or above
    everything when it had given none, so that a merge passes it on without delay."""

    __slots__ = ("id", "updated")

    def __init__(self, updated: float, id: str) -> None:
        self.updated = updated
        self.id = id


Item = Task | Pause


def thinned(found: Iterable[Task | None]) -> Iterator[Task | None]:
    """``found`` gives each entry's task, or None for an entry skipped: the tasks, with one
    None for every ``LOOK_STEP`` skipped (what a source of ``newest_first_merge`` yields)."""
    skipped = 0
    for task in found:
        if task is not None:
            yield task
        else:
            skipped += 1
            if skipped == LOOK_STEP:
                skipped = 0
                yield None


def newest_first_merge(*streams: Iterable[Item | None]) -> Iterator[Item]:
    """Streams each by (updated, id), newest first, merged into one; ``None`` in a stream
    becomes a ``Pause`` placed where the stream stood, so no ``next()`` of the merge reads
    more than one item or ``LOOK_STEP`` skipped entries of one stream."""
    placed = [_placed(stream) for stream in streams]
    if len(placed) == 1:
        return placed[0]
    return heapq.merge(*placed, key=_key, reverse=True)


def _key(item: Item) -> tuple[float, str]:
    return (item.updated, item.id)


def _placed(stream: Iterable[Item | None]) -> Iterator[Item]:
    updated, id_ = math.inf, ""
    for item in stream:
        if item is None:
            yield Pause(updated, id_)
        else:
            updated, id_ = item.updated, item.id
            yield item
