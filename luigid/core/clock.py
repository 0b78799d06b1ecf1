"""The scheduler's one clock, and the values a call makes up (message ids).

A state-changing call reads the time once: ``call()`` freezes ``now()`` for its duration and
collects the ids it generates, so that the change log can record them and a replay, run
under ``call(at=..., ids=...)``, makes exactly the same change. Outside a call ``now()`` is
``time.time()`` read afresh each time, so tests that patch ``time.time`` still drive it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Call:
    #: the time the call uses throughout
    now: float
    #: ids the call generated (live), or the recorded ones still to hand out (replay)
    ids: list[str] = field(default_factory=list)
    replaying: bool = False


_current: Call | None = None


def now() -> float:
    call = _current
    return call.now if call is not None else time.time()


def new_id() -> str:
    """A fresh unique id (uuid4), or during a replay the one the recorded call made."""
    call = _current
    if call is None:
        return str(uuid.uuid4())
    if call.replaying:
        return call.ids.pop(0) if call.ids else str(uuid.uuid4())
    made = str(uuid.uuid4())
    call.ids.append(made)
    return made


@contextlib.contextmanager
def call(at: float | None = None, ids: list[str] | None = None) -> Iterator[Call]:
    """Freeze the clock (at ``at``, or now) for one call; nested calls share the outer one."""
    global _current
    outer = _current
    if outer is not None:
        yield outer
        return
    current = Call(time.time() if at is None else at, list(ids or ()), replaying=at is not None)
    _current = current
    try:
        yield current
    finally:
        _current = outer
