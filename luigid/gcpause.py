"""Pausing the cyclic garbage collector around bulk work.

Building a 100k-task reply allocates hundreds of thousands of small dicts; every few hundred
allocations the collector would walk the young generation, and now and then everything.
Nothing such a reply builds forms reference cycles (reference counting frees it), so the
collector is switched off for the duration. Pauses nest: overlapping bulk replies (streamed
replies interleave) turn collection back on only when the last one ends, and only if it was
on when the first began.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class _Pause:
    depth = 0
    resume = False


@contextmanager
def paused() -> Iterator[None]:
    if _Pause.depth == 0:
        _Pause.resume = gc.isenabled()
        gc.disable()
    _Pause.depth += 1
    try:
        yield
    finally:
        _Pause.depth -= 1
        if _Pause.depth == 0 and _Pause.resume:
            gc.enable()
