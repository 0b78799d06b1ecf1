"""The writer thread: drains the event queue into the database in batches, off the event loop.

Everything that can block on the database happens here (schema creation, inserts, retention
deletes). When the database fails, a batch is retried a few times with growing pauses and
then dropped and counted, so a dead database costs bounded memory and no stall anywhere else.
Events leave the queue in order, and each one written or dropped moves ``mark`` (see
``flushmark``), which page reads wait on.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections import deque
from typing import Any

import sqlalchemy as sa

from luigid.core.throttled_log import ThrottledWarning
from luigid.history import schema, store
from luigid.history.engine import describe_db_error as _short
from luigid.history.events import HistoryEvent
from luigid.history.flushmark import FlushMark
from luigid.history.runs import RunTracker

logger = logging.getLogger("luigid.history")

#: attempts per batch before it is dropped
MAX_ATTEMPTS = 3
#: longest pause between attempts, seconds
MAX_BACKOFF = 30.0
#: retention deletes run at most this often, seconds
PRUNE_INTERVAL = 600.0


class HistoryWriter:
    def __init__(
        self,
        engine: sa.Engine,
        queue: deque[HistoryEvent],
        batch_size: int,
        flush_interval: float,
        max_tracked_runs: int,
        retention_days: float | None,
    ) -> None:
        self._engine = engine
        self._queue = queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retention_days = retention_days
        self._tracker = RunTracker(max_tracked_runs)
        self.wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._pending: list[HistoryEvent] = []
        self._attempts = 0
        self._schema_ready = False
        #: work cycles done; flushes wait for the first, so the tables have been tried at least once
        self._cycles = 0
        self._prune_requested = False
        self._last_prune: float | None = None
        self._thread: threading.Thread | None = None
        #: events taken from the queue and written or dropped, in queue order
        self._settled = 0
        self.mark = FlushMark()
        self._failure_log = ThrottledWarning(logger)
        # Counters, each written by this thread only.
        self.write_failures = 0
        self.dropped = 0
        self.written = 0
        self.pruned_runs = 0

    # -- control (any thread) --

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="luigid-history-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None) -> bool:
        """Write what is queued (one attempt, no pauses), end the thread; False if it did not end in time."""
        self._stopping.set()
        self.wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def request_prune(self) -> None:
        if self._retention_days is not None:
            self._prune_requested = True
            self.wake.set()

    def wait_idle(self, timeout: float | None) -> bool:
        """Block until the queue is written (or dropped); for shutdown paths and tests, not the event loop."""
        self.wake.set()
        with self._idle:
            return self._idle.wait_for(self._is_idle, timeout)

    def _is_idle(self) -> bool:
        return (
            self._cycles > 0
            and not self._queue
            and not self._pending
            and not self._busy
            and not self._prune_requested
        )

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def tracked_runs(self) -> int:
        return len(self._tracker)

    # -- the thread --

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            self._set_busy(True)
            try:
                pause = self._work(final=stopping)
            except Exception as exc:  # never let the thread die: history would silently stop
                self.write_failures += 1
                self._failure_log.warn("task history writer error: %s", _short(exc))
                pause = MAX_BACKOFF
            finally:
                self._set_busy(False)
            if stopping:
                return
            if pause:
                self._stopping.wait(pause)
            else:
                self.wake.wait(self._flush_interval)
                self.wake.clear()

    def _set_busy(self, busy: bool) -> None:
        with self._idle:
            self._busy = busy
            if not busy:
                self._cycles += 1
                self._idle.notify_all()
        if not busy:
            self.mark.advance(self._settled)  # also after a cycle that wrote nothing: the first one opens it

    def _work(self, final: bool) -> float:
        """Do everything due now; return how long to pause before trying again (0: nothing failed)."""
        if not self._schema_ready:
            try:
                schema.create_missing(self._engine)
                self._schema_ready = True
            except Exception as exc:
                return self._failed(exc, "could not create the task history tables", final)
        if self._prune_requested:
            self._prune()
        while True:
            if not self._pending:
                self._pending = self._take_batch()
                self._attempts = 0
            if not self._pending:
                return 0.0
            try:
                with self._engine.begin() as conn:
                    staged = store.write_batch(conn, self._pending, self._tracker)
            except Exception as exc:
                # Check the tables again before the retry: someone may have dropped them.
                self._schema_ready = False
                return self._failed(exc, "could not write task history", final)
            for task_id, state in staged.items():
                self._tracker.put(task_id, state)
            self.written += len(self._pending)
            self._settle(len(self._pending))
            self._pending = []

    def _take_batch(self, size: int | None = None) -> list[HistoryEvent]:
        batch: list[HistoryEvent] = []
        queue = self._queue
        size = size or self._batch_size
        while queue and len(batch) < size:
            batch.append(queue.popleft())
        return batch

    def _settle(self, count: int) -> None:
        """``count`` more events, the oldest taken, are written or dropped: their readers may go on."""
        self._settled += count
        self.mark.advance(self._settled)

    def _failed(self, exc: BaseException, what: str, final: bool) -> float:
        self._attempts += 1
        if self._pending and (final or self._attempts >= MAX_ATTEMPTS):
            self.dropped += len(self._pending)
            self._settle(len(self._pending))
            self._failure_log.warn(
                "%s (%s); dropped %d events after %d attempts",
                what,
                _short(exc),
                len(self._pending),
                self._attempts,
            )
            self._pending = []
            self._attempts = 0
        else:
            self._failure_log.warn("%s (%s); will retry", what, _short(exc))
        # counted after the warning: whoever sees the count (metrics, tests) can also see the line
        self.write_failures += 1
        if final:
            # Shutting down with the database gone: drop what is left rather than wait for it.
            left = self._take_batch(len(self._queue))
            self.dropped += len(left)
            self._settle(len(left))
            return 0.0
        return min(MAX_BACKOFF, 0.5 * 2 ** max(self._attempts, 1))

    def _prune(self) -> None:
        self._prune_requested = False
        now = time.monotonic()
        if self._retention_days is None or (
            self._last_prune is not None and now - self._last_prune < PRUNE_INTERVAL
        ):
            return
        self._last_prune = now
        cutoff = datetime.datetime.now() - datetime.timedelta(days=self._retention_days)
        try:
            deleted = store.prune_runs_before(self._engine, cutoff)
        except Exception as exc:
            self.write_failures += 1
            self._failure_log.warn("could not prune old task history (%s)", _short(exc))
            return
        self._tracker.forget_records(deleted)
        self.pruned_runs += len(deleted)
        if deleted:
            logger.info("pruned %d task history runs older than %s", len(deleted), cutoff.isoformat(" "))

    def stats(self) -> dict[str, Any]:
        return {
            "write_failures": self.write_failures,
            "dropped": self.dropped,
            "written": self.written,
            "pruned_runs": self.pruned_runs,
        }
