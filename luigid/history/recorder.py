"""DbTaskHistory: the object the scheduler reports task events to, and the pages read from.

The three report methods run on the event loop inside RPC handling, so they only copy a few
fields into a bounded in-memory queue; a writer thread does the database work. Reads for the
pages run on a small thread pool of their own, awaited by the handlers, after ``caught_up``:
luigi writes history synchronously, so its pages always show every event reported before
them, and scripts reading history right after a run rely on that.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from luigid.core.model import DONE, FAILED, PENDING, RUNNING, Task
from luigid.core.throttled_log import ThrottledWarning
from luigid.history import views
from luigid.history.config import HistoryConfig, parse_history_config
from luigid.history.engine import open_engine
from luigid.history.events import HistoryEvent, failure_message

logger = logging.getLogger("luigid.history")

T = TypeVar("T")

#: threads serving page reads; a hung database can tie these up, never the event loop
READ_THREADS = 2
#: longest a page read waits for the writer to catch up, seconds; then it reads what is written
READ_WAIT = 5.0


class DbTaskHistory:
    """Task history in luigi's database layout, recorded off the hot path."""

    def __init__(self, config: HistoryConfig, engine: Any, read_wait: float = READ_WAIT) -> None:
        # Imported here, not at the top: these need SQLAlchemy, and without it from_config must
        # still be importable to report the missing package as a ConfigError.
        from luigid.history import queries
        from luigid.history.writer import HistoryWriter

        self._queries = queries
        self.config = config
        self.engine = engine
        self._queue: deque[HistoryEvent] = deque()
        self._queue_size = config.queue_size
        self._batch_size = config.batch_size
        self._writer = HistoryWriter(
            engine,
            self._queue,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
            max_tracked_runs=config.max_tracked_runs,
            retention_days=config.retention_days,
        )
        self._wake = self._writer.wake
        self.read_wait = read_wait
        #: number of the last event queued; the writer settles them in this order
        self._accepted = 0
        self._dropped_full = 0
        self._closed = False
        self._drop_log = ThrottledWarning(logger)
        self._queue_log = ThrottledWarning(logger)
        self._readers: ThreadPoolExecutor | None = None

    @classmethod
    def from_config(cls, sections: Mapping[str, Mapping[str, Any]]) -> DbTaskHistory:
        """Build from all config sections; ConfigError (one line) on bad values or a missing driver."""
        config = parse_history_config(sections)
        return cls(config, open_engine(config.db_connection))

    # -- lifecycle --

    def start(self) -> None:
        """Start the writer thread; it creates missing tables itself, retrying while the database is down."""
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="luigid-history-read")
        self._writer.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop taking events, write what is queued, end the threads; False if writing ran out of time."""
        self._closed = True
        finished = self._writer.stop(timeout)
        if self._readers is not None:
            self._readers.shutdown(wait=False, cancel_futures=True)
        if finished:
            self.engine.dispose()
        else:
            logger.warning("task history: %d events were not written before shutdown", self.queue_depth)
        return finished

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is written or dropped. Not for the event loop."""
        return self._writer.wait_idle(timeout)

    def prune(self) -> None:
        """Periodic maintenance (call from the scheduler's prune): asks the writer to apply retention_days."""
        self._writer.request_prune()

    # -- the scheduler's calls (event loop; must stay cheap and never raise) --

    def task_scheduled(self, task: Task) -> None:
        self._enqueue(task, PENDING, None, None)

    def task_started(self, task: Task, worker_host: str | None) -> None:
        self._enqueue(task, RUNNING, worker_host, None)

    def task_finished(self, task: Task, successful: bool) -> None:
        if successful:
            self._enqueue(task, DONE, None, None)
        else:
            self._enqueue(task, FAILED, None, task.expl)

    def _enqueue(self, task: Task, event_name: str, host: str | None, expl: Any) -> None:
        try:
            queue = self._queue
            if self._closed or len(queue) >= self._queue_size:
                self._dropped_full += 1
                self._drop_log.warn(
                    "task history queue is full (%d events) or closed; dropping events (%d so far)",
                    self._queue_size,
                    self.dropped,
                )
                return
            queue.append(
                HistoryEvent(
                    task.id,
                    task.family,
                    dict(task.params),
                    event_name,
                    time.time(),
                    str(host) if host else None,
                    failure_message(expl) if event_name == FAILED else None,
                )
            )
            self._accepted += 1  # one thread reports (the scheduler's), so no lock
            if len(queue) >= self._batch_size and not self._wake.is_set():
                self._wake.set()
        except Exception:
            self._queue_log.warn("task history: could not queue an event", exc_info=True)

    # -- counters, for metrics --

    @property
    def queue_depth(self) -> int:
        """Events accepted but not yet written (queued plus the batch being written)."""
        return len(self._queue) + self._writer.in_flight

    @property
    def write_failures(self) -> int:
        """Failed database operations (each failed batch attempt, schema creation or prune)."""
        return self._writer.write_failures

    @property
    def dropped(self) -> int:
        """Events never written: queue full, closed, or given up after repeated write failures."""
        return self._dropped_full + self._writer.dropped

    @property
    def written(self) -> int:
        return self._writer.written

    def metrics(self) -> dict[str, int]:
        return {
            "queue_depth": self.queue_depth,
            "write_failures": self.write_failures,
            "dropped": self.dropped,
            "written": self.written,
            "tracked_runs": self._writer.tracked_runs,
            "pruned_runs": self._writer.pruned_runs,
        }

    # -- reads for the pages (run on the reader threads) --

    @property
    def accepted(self) -> int:
        """Number of the last event queued so far (events are numbered 1, 2, ... as they are queued)."""
        return self._accepted

    async def caught_up(self, through: int | None = None, timeout: float | None = None) -> int:
        """Wait until events up to number ``through`` (default: every one queued so far) are written
        or given up, at most ``timeout`` seconds (default ``read_wait``); return how many of them
        are still unwritten (0: caught up). Holds neither the event loop nor a thread."""
        target = self._accepted if through is None else through
        mark = self._writer.mark
        # stopped or never started: no writer to wait for (and the read will say so)
        if mark.settled < target and not self._closed and self._readers is not None:
            self._wake.set()  # write now rather than after flush_interval
            await mark.reached(target, self.read_wait if timeout is None else timeout)
        return max(0, target - max(mark.settled, 0))

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read method below on the reader threads and await it."""
        if self._readers is None:
            raise RuntimeError("task history is not started")
        return await asyncio.wrap_future(self._readers.submit(fn, *args))

    def _with_conn(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.connect() as conn:
            return fn(conn, *args)

    def recent_runs(self, hours: float = 24.0) -> list[views.RunView]:
        since = datetime.datetime.now() - datetime.timedelta(hours=hours)
        return self._with_conn(self._queries.recent_runs, since, self.config.page_size)

    def runs_by_name(self, family: str) -> list[views.RunView]:
        return self._with_conn(self._queries.runs_by_name, family, self.config.page_size)

    def runs_by_params(self, family: str, params: Mapping[str, str]) -> list[views.RunView]:
        return self._with_conn(self._queries.runs_by_params, family, params, self.config.page_size)

    def run_by_id(self, record_id: int) -> views.RunView | None:
        return self._with_conn(self._queries.run_by_id, record_id)

    def runs_by_task_id(self, task_id: str) -> list[views.RunView]:
        return self._with_conn(self._queries.runs_by_task_id, task_id, self.config.page_size)

    def task_id_runs(self, task_id: str) -> tuple[views.RunView | None, list[views.RunView]]:
        """The newest run of ``task_id`` in full, and every run of it (newest first) in summary."""
        with self.engine.connect() as conn:
            runs = self._queries.runs_by_task_id(conn, task_id, self.config.page_size)
            return (self._queries.run_by_id(conn, runs[0].id) if runs else None), runs

    def families(self) -> list[views.FamilyView]:
        return self._with_conn(self._queries.families, 10 * self.config.page_size)

    def run_durations(self, family: str) -> list[views.DurationPoint]:
        return self._with_conn(self._queries.run_durations, family, self.config.page_size)
