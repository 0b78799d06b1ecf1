"""Recording state changes for the change log, and replaying them.

A record is a state-changing call with every input it depends on (as Redis's append-only
file does): the method, its arguments (encoded before the call runs, so nothing the call
does to them can leak in), the one time the call used (``luigid.core.clock``) and the ids
it generated. Work that changes state outside a recorded call (a prune slice run by the
server's timer or by a read call) is recorded as ``PRUNE`` with its budget. A record is
appended after the call ran and before it is answered, whatever its outcome: a call that
failed half-way fails the same way when replayed.

Replaying a record runs the same call with the clock frozen at the recorded time. Side
effects are the caller's to mute (``muted``): no e-mail, history or metrics.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from luigid.core import clock
from luigid.core.ports import ChangeLog, NoAlerts, NoHistory, NoMetrics
from luigid.core.rpc import RPC_METHODS, dumps

logger = logging.getLogger("luigi.server")

T = TypeVar("T")

#: The method name of a prune slice run outside a recorded call; arguments ``{"tasks": n}``.
PRUNE = "__prune__"
#: A new leader marking every known worker as just seen (``Scheduler.mark_workers_seen``).
WORKERS_SEEN = "__workers_seen__"


class Recorder:
    def __init__(self) -> None:
        #: where records go; None: nothing is recorded (and the clock is not frozen)
        self.log: ChangeLog | None = None
        #: >0 inside a recorded call or a replay: nested work is part of that record
        self._depth = 0

    @property
    def inside(self) -> bool:
        """Inside a recorded call or a replay."""
        return self._depth > 0

    def run(self, method: str, arguments: dict[str, Any], body: Callable[[], T]) -> T:
        """Run ``body``, the call ``method(**arguments)``, as one record."""
        log = self.log
        if log is None or self._depth:
            return body()
        encoded = dumps(arguments)
        with clock.call() as call:
            self._depth += 1
            try:
                return body()
            finally:
                self._depth -= 1
                log.append(method, encoded, call.now, call.ids)

    def replay(
        self, scheduler: Any, method: str, arguments: dict[str, Any], now: float, ids: list[str]
    ) -> None:
        """Make the recorded change again. A call that raised then raises again now: that
        is expected, and only logged at debug level."""
        with clock.call(at=now, ids=ids):
            self._depth += 1
            try:
                if method == PRUNE:
                    scheduler.prune_slice(arguments.get("tasks"))
                elif method == WORKERS_SEEN:
                    scheduler.mark_workers_seen()
                else:
                    RPC_METHODS[method].call(scheduler, arguments)
            except Exception as exc:
                logger.debug("Replayed %s raised %s, as it did when it was made", method, exc)
            finally:
                self._depth -= 1


class _NoBatch:
    """A batch notifier that sends nothing, where the real one would be called."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def muted(scheduler: Any) -> Iterator[None]:
    """The scheduler with do-nothing collaborators meanwhile (``Scheduler.attach``)."""
    saved = (scheduler.metrics_collector, scheduler.task_history, scheduler.batch_notifier, scheduler.alerts)
    batch = None if scheduler.batch_notifier is None else _NoBatch()
    scheduler.attach(NoMetrics(), NoHistory(), batch, NoAlerts())
    try:
        yield
    finally:
        scheduler.attach(*saved)
