"""The interface every metrics collector implements, and the collector that records nothing.

The first seven methods carry luigi's names and signatures, so a collector written for
luigi's scheduler works here unchanged. The ``observe_*``/``set_*_probe`` methods are
luigid's additions: the server feeds them on every RPC, prune and snapshot, so they must be
cheap, and their default here is to ignore the call.

Everything is called on the event loop. Implementations must only update memory or hand the
work to something that does not block (a UDP datagram, a queue); never wait on I/O.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

from luigid.core.ports import NoMetrics

#: returns {'tasks_by_status': {status: n}, 'workers_active': n, 'workers_disabled': n}
StateProbe = Callable[[], Mapping[str, Any]]
#: returns {'queue_depth': n, 'write_failures': n}
HistoryProbe = Callable[[], Mapping[str, int]]
#: returns {'longest_seconds': s, 'longest_on_cpu_seconds': s, 'recent_longest_seconds': s,
#: 'over_threshold': n} (see luigid.runtime.stalls)
StallProbe = Callable[[], Mapping[str, float]]
#: returns {'open_connections': n, 'accepts_refused': n, 'resident_memory_bytes': n,
#: 'writes_refused': 0 or 1, 'writes_refused_calls': n}
#: (see luigid.runtime.accept and luigid.runtime.resources)
ServerProbe = Callable[[], Mapping[str, int]]


class MetricsCollector(abc.ABC):
    """Receives task events from the scheduler and operational readings from the server."""

    # -- task events (luigi's interface) --------------------------------------------------

    @abc.abstractmethod
    def handle_task_started(self, task: Any) -> None:
        """A worker was given ``task`` to run (get_work / update_metrics_task_started)."""

    @abc.abstractmethod
    def handle_task_failed(self, task: Any) -> None:
        """``task`` moved to FAILED."""

    @abc.abstractmethod
    def handle_task_disabled(self, task: Any, config: Any) -> None:
        """``task`` moved to DISABLED; ``config`` is the scheduler config (retry/disable settings)."""

    @abc.abstractmethod
    def handle_task_done(self, task: Any) -> None:
        """``task`` moved to DONE."""

    def handle_task_statistics(self, task: Any, statistics: Any) -> None:  # noqa: B027 (optional hook)
        """A worker sent ``report_task_statistics`` for ``task``."""

    def generate_latest(self) -> bytes | str | None:
        """The body for ``GET /metrics``; a falsy value means there is nothing to expose."""
        return None

    def configure_http_handler(self, http_handler: Any) -> None:  # noqa: B027 (optional hook)
        """Adjust the ``/metrics`` response (e.g. its Content-Type) before the body is written."""

    # -- luigid's operational readings ----------------------------------------------------

    def observe_rpc(self, method: str, seconds: float, status_code: int) -> None:  # noqa: B027 (optional hook)
        """One ``/api/<method>`` request finished with ``status_code`` after ``seconds``."""

    def observe_prune(self, seconds: float) -> None:  # noqa: B027 (optional hook)
        """A prune call just finished and held the loop for ``seconds`` (a big round runs
        as several calls, see ``Scheduler.prune_slice``)."""

    def observe_snapshot(self, seconds: float) -> None:  # noqa: B027 (optional hook)
        """A state snapshot was just written and took ``seconds``."""

    def set_state_probe(self, probe: StateProbe) -> None:  # noqa: B027 (optional hook)
        """Give a callable read at scrape time for task and worker counts."""

    def set_history_probe(self, probe: HistoryProbe) -> None:  # noqa: B027 (optional hook)
        """Give a callable read at scrape time for the task-history queue."""

    def set_stall_probe(self, probe: StallProbe) -> None:  # noqa: B027 (optional hook)
        """Give a callable read at scrape time for the event loop's longest stalls."""

    def set_server_probe(self, probe: ServerProbe) -> None:  # noqa: B027 (optional hook)
        """Give a callable read at scrape time for connections, refused accepts and memory."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release sockets or threads at shutdown."""


class NoMetricsCollector(NoMetrics, MetricsCollector):
    """``metrics_collector = none`` / ``default``: every event is accepted and dropped (core's
    ``NoMetrics``, the scheduler's own default, made a full collector)."""
