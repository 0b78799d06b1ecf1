"""What held the event loop: the slowest callback the loop ran, named (a debugging aid).

The stall monitor (``luigid.runtime.stalls``) measures how long the loop was held, not by
what. With ``[scheduler] stall_trace = true`` every callback the asyncio loop runs is timed
in CPU time of the loop's thread (two clock reads each, a system call apiece: about 2 µs a
callback), and the one that used the most CPU since the monitor's previous tick is kept with
a name. CPU time, not wall time: on a busy machine a callback may wait for a CPU half-way,
and the one that merely waited is not what held the loop. The name is the coroutine a task
step ran, with the HTTP method and path when it is a request handler's; the function a
timer ran (Tornado's periodic callbacks by what they call); and the time the cyclic garbage
collector spent inside it, with the generation of its slowest collection. The monitor then
names the culprit of every stall it warns about, of the longest one and of the one longest
on the CPU.

A stall with no slow callback behind it was spent between callbacks: in the loop's own
work (polling, timers), or off the CPU (the monitor tells those apart).

A name says which request held the loop, not where: a request handler runs many kinds of
steps. So a thread (``_sample_stacks``) also looks every ``SAMPLE_EVERY`` at the callback under
way, and once one has run ``SAMPLE_AFTER`` by the wall clock it takes the loop thread's stack,
once per callback: the name then ends with where that callback stood, the innermost frames of
luigid's own code ("at browse.py:173 sweep < taskbrowser.py:141 get"). That is how the 65-93 ms
``/ui/tasks`` stalls at 1M tasks were found to be a sweep right after a fork.

Off by default: it replaces ``asyncio.Handle._run`` for the whole process.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tornado.ioloop import PeriodicCallback

#: Callbacks shorter than this are timed but never named (naming one costs a few µs).
NAME_ABOVE = 0.002
#: A callback still running after this long (wall clock) has its stack sampled, once.
SAMPLE_AFTER = 0.04
#: How often the sampling thread looks (it wakes only while the trace is installed).
SAMPLE_EVERY = 0.01
#: Frames named in a sample, innermost first.
SAMPLE_FRAMES = 3
#: Where the frames a sample names come from: luigid's own code.
HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_THIS_FILE = __file__


class LoopTrace:
    def __init__(self, clock: Callable[[], float] = time.thread_time, home: str = HOME) -> None:
        self._clock = clock
        self._home = home
        #: the callback under way: its number, and when it began (0.0: none); the sampling
        #: thread reads both and stores (number, where) in ``_sample``
        self._serial = 0
        self._began = 0.0
        self._sample: tuple[int, str] = (0, "")
        self._sampling: threading.Event | None = None
        #: the slowest callback since the last ``take``: seconds on the CPU, name
        self.slowest = 0.0
        self.slowest_name = ""
        #: garbage collection: CPU seconds so far, and when the one under way started
        self._gc_seconds = 0.0
        self._gc_started = 0.0
        #: the slowest collection since the callback under way began: seconds, generation
        self._gc_slowest = (0.0, 0)
        self._original: Callable[[asyncio.Handle], None] | None = None

    def install(self) -> None:
        """Time every callback of every asyncio loop in this process from now on."""
        if self._original is not None:
            return
        original = asyncio.Handle._run
        trace = self
        clock = self._clock

        def timed_run(handle: asyncio.Handle) -> None:
            frame = _frame_of(handle)
            gc_before = trace._gc_seconds
            trace._gc_slowest = (0.0, 0)
            trace._serial = serial = trace._serial + 1
            trace._began = time.monotonic()
            start = clock()
            original(handle)
            took = clock() - start
            trace._began = 0.0
            if took > trace.slowest:
                sampled, where = trace._sample
                at = where if sampled == serial else ""
                trace.note(took, handle, frame, trace._gc_seconds - gc_before, trace._gc_slowest, at)

        self._original = original
        asyncio.Handle._run = timed_run  # type: ignore[method-assign,assignment]
        gc.callbacks.append(self._on_gc)
        self._sampling = threading.Event()
        threading.Thread(
            target=self._sample_stacks,
            args=(threading.get_ident(), self._sampling),
            name="stall-trace-stacks",
            daemon=True,
        ).start()

    def _sample_stacks(self, loop_thread: int, stop: threading.Event) -> None:
        """Take the loop thread's stack once per callback that runs past ``SAMPLE_AFTER``."""
        while not stop.wait(SAMPLE_EVERY):
            serial, began = self._serial, self._began
            if not began or time.monotonic() - began < SAMPLE_AFTER or self._sample[0] == serial:
                continue
            frame = sys._current_frames().get(loop_thread)
            if frame is not None and serial == self._serial:  # still the same callback
                self._sample = (serial, self._where(frame))

    def _where(self, frame: Any) -> str:
        """The innermost frames of code under ``home`` (the trace's own left out):
        "file.py:line function < ..."."""
        found: list[str] = []
        while frame is not None and len(found) < SAMPLE_FRAMES:
            code = frame.f_code
            if code.co_filename.startswith(self._home) and code.co_filename != _THIS_FILE:
                found.append(f"{os.path.basename(code.co_filename)}:{frame.f_lineno} {code.co_name}")
            frame = frame.f_back
        return " < ".join(found)

    def uninstall(self) -> None:
        if self._sampling is not None:
            self._sampling.set()
            self._sampling = None
        if self._original is not None:
            asyncio.Handle._run = self._original  # type: ignore[method-assign,assignment]
            self._original = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def note(
        self,
        took: float,
        handle: Any,
        frame: Any = None,
        gc_seconds: float = 0.0,
        gc_slowest: tuple[float, int] = (0.0, 0),
        at: str = "",
    ) -> None:
        """A callback that ran ``took`` seconds, longer than any since the last ``take``;
        ``gc_seconds`` of it collecting garbage, the slowest collection ``gc_slowest``
        (seconds, generation: which one walked what tells the young from the long-lived);
        ``at``, where its stack was sampled ("" if it was not)."""
        self.slowest = took
        if took < NAME_ABOVE:
            self.slowest_name = ""
            return
        name = describe(handle, frame)
        if gc_seconds >= 0.001:
            slowest, generation = gc_slowest
            name += (
                f" (garbage collection {gc_seconds * 1000:.0f} ms of it,"
                f" the slowest of generation {generation}: {slowest * 1000:.0f} ms)"
            )
        if at:
            name += f" at {at}"
        self.slowest_name = name

    def take(self) -> tuple[float, str]:
        """The slowest callback since the previous call (seconds, name), and start over."""
        found = self.slowest, self.slowest_name
        self.slowest, self.slowest_name = 0.0, ""
        return found

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = self._clock()
        else:
            took = self._clock() - self._gc_started
            self._gc_seconds += took
            if took > self._gc_slowest[0]:
                self._gc_slowest = (took, info.get("generation", 0))


def _frame_of(handle: Any) -> Any:
    """The frame of the coroutine a task step is about to run (its locals name a request
    even once the coroutine has finished, as long as the frame is held)."""
    owner = getattr(handle._callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return owner.get_coro().cr_frame  # type: ignore[union-attr]
    return None


def describe(handle: Any, frame: Any = None) -> str:
    """A short name for what a loop callback ran."""
    callback = handle._callback
    args = handle._args or ()
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        this = frame.f_locals.get("self") if frame is not None else None
        if isinstance(this, PeriodicCallback):  # Tornado runs them as coroutines
            return _name(this.callback)
        coro = owner.get_coro()
        name = getattr(coro, "__qualname__", None) or repr(coro)
        request = _request_of(this)
        return f"{name} {request}" if request else name
    # Tornado's IOLoop hands its own callbacks to asyncio wrapped in _run_callback(partial)
    if getattr(callback, "__name__", "") == "_run_callback" and args:
        callback = args[0]
    while isinstance(callback, functools.partial):
        callback = callback.func
    return _name(callback)


def _name(callback: Any) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)


def _request_of(handler: Any) -> str:
    """``METHOD /path`` when ``handler`` is a Tornado request handler."""
    request = getattr(handler, "request", None)
    method, path = getattr(request, "method", None), getattr(request, "path", None)
    return f"{method} {path}" if isinstance(method, str) and isinstance(path, str) else ""
