"""How far the writer has got: the mark page reads wait on, so they include every earlier event.

Events are numbered in the order they are queued (1, 2, ...). The writer thread takes them in
that order and, after each batch is committed or given up, moves the mark to the number of the
last event it settled. A page read notes the number of the last event queued before it and
awaits the mark reaching it: an asyncio future, completed from the writer thread through
``call_soon_threadsafe``, so waiting holds neither the event loop nor a thread.

The mark is -1 until the writer's first cycle ends, so a read at startup also waits for the
first attempt at creating the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out has cancelled its future
        future.set_result(None)


class FlushMark:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = -1
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def settled(self) -> int:
        """Number of the last event written or given up (-1 before the writer's first cycle)."""
        return self._settled

    def advance(self, settled: int) -> None:
        """Writer thread: every event up to ``settled`` is written or dropped; wake their waiters."""
        with self._lock:
            self._settled = max(self._settled, settled)
            due = [waiter for waiter in self._waiters if waiter[0] <= self._settled]
            if due:
                self._waiters = [waiter for waiter in self._waiters if waiter[0] > self._settled]
        for _target, loop, future in due:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future)

    async def reached(self, target: int, timeout: float) -> bool:
        """Event loop: wait until the mark reaches ``target``; False if ``timeout`` seconds passed first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (target, loop, future)
        with self._lock:
            if self._settled >= target:
                return True
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
