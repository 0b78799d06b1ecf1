"""``metrics_collector = prometheus``: luigi's task metrics plus luigid's operational ones.

Each collector owns a private ``CollectorRegistry`` so that several schedulers in one process
(tests, embedding) never register the same metric twice. Readings that describe current
state (tasks by status, workers, history queue, ages) are produced at scrape time from the
probes the server installs, so nothing is maintained on the hot path for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from luigid.config import config_error, get_bool, get_list
from luigid.core.throttled_log import ThrottledWarning
from luigid.metrics.collector import HistoryProbe, MetricsCollector, ServerProbe, StallProbe, StateProbe
from luigid.runtime.stalls import WARN_ABOVE

logger = logging.getLogger("luigid.metrics")

#: scheduler RPCs mostly take well under a millisecond; the upper buckets catch stalls
RPC_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: distinct ``method`` label values kept before the rest are folded into "other"
MAX_RPC_METHOD_LABELS = 200


class PrometheusCollector(MetricsCollector):
    def __init__(
        self,
        use_task_family_in_labels: bool = True,
        task_parameters_to_use_in_labels: tuple = (),
        sections: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        family = ["family"] if use_task_family_in_labels else []
        # a parameter named like another label (or "family") would make label sets mismatch at runtime
        self.labels = list(dict.fromkeys([*map(str, task_parameters_to_use_in_labels), *family]))
        if not self.labels:
            raise config_error(
                sections or {},
                "prometheus",
                "use_task_family_in_labels",
                "is false and task_parameters_to_use_in_labels is empty: task metrics need a label",
            )
        self.registry = CollectorRegistry()
        try:
            self._build_task_metrics()
        except ValueError as exc:
            raise config_error(
                sections or {}, "prometheus", "task_parameters_to_use_in_labels", str(exc)
            ) from None
        self._rpc_requests = Counter(
            "luigid_rpc_requests_total",
            "Scheduler API requests handled, by RPC method and HTTP status code",
            ["method", "code"],
            registry=self.registry,
        )
        self._rpc_latency = Histogram(
            "luigid_rpc_request_duration_seconds",
            "Time spent handling scheduler API requests, by RPC method",
            ["method"],
            buckets=RPC_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._rpc_methods_seen: set[str] = set()
        self._readings = _StateReadings()
        self.registry.register(self._readings)

    @classmethod
    def from_sections(cls, sections: Mapping[str, Mapping[str, Any]] | None) -> PrometheusCollector:
        sections = sections or {}
        return cls(
            use_task_family_in_labels=get_bool(sections, "prometheus", "use_task_family_in_labels", True),
            task_parameters_to_use_in_labels=get_list(
                sections, "prometheus", "task_parameters_to_use_in_labels", ()
            ),
            sections=sections,
        )

    def _build_task_metrics(self) -> None:
        def counter(name: str, what: str) -> Counter:
            return Counter(name, f"number of {what} luigi tasks", self.labels, registry=self.registry)

        self.task_started_counter = counter("luigi_task_started_total", "started")
        self.task_failed_counter = counter("luigi_task_failed_total", "failed")
        self.task_disabled_counter = counter("luigi_task_disabled_total", "disabled")
        self.task_done_counter = counter("luigi_task_done_total", "done")
        self.task_execution_time = Gauge(
            "luigi_task_execution_time_seconds",
            "luigi task execution time in seconds",
            self.labels,
            registry=self.registry,
        )

    def _label_values(self, task: Any) -> dict[str, Any]:
        params = getattr(task, "params", None) or {}
        return {name: task.family if name == "family" else params.get(name) for name in self.labels}

    def _record_run_time(self, task: Any, labels: dict[str, Any]) -> None:
        # a task that was already complete never ran here, so it has no run time to report
        if task.time_running is not None and task.updated is not None:
            self.task_execution_time.labels(**labels).set(task.updated - task.time_running)

    # -- luigi's task events --------------------------------------------------------------

    def handle_task_started(self, task: Any) -> None:
        labels = self._label_values(task)
        self.task_started_counter.labels(**labels).inc()
        self.task_execution_time.labels(**labels)  # make the series visible from the start

    def handle_task_failed(self, task: Any) -> None:
        labels = self._label_values(task)
        self.task_failed_counter.labels(**labels).inc()
        self._record_run_time(task, labels)

    def handle_task_disabled(self, task: Any, config: Any) -> None:
        labels = self._label_values(task)
        self.task_disabled_counter.labels(**labels).inc()
        self._record_run_time(task, labels)

    def handle_task_done(self, task: Any) -> None:
        labels = self._label_values(task)
        self.task_done_counter.labels(**labels).inc()
        self._record_run_time(task, labels)

    def generate_latest(self) -> bytes:
        return generate_latest(self.registry)

    def configure_http_handler(self, http_handler: Any) -> None:
        http_handler.set_header("Content-Type", CONTENT_TYPE_LATEST)

    # -- luigid's operational readings ----------------------------------------------------

    def observe_rpc(self, method: str, seconds: float, status_code: int) -> None:
        if method not in self._rpc_methods_seen:
            # unknown names come from clients' URLs; bound the label set they can create
            if len(self._rpc_methods_seen) >= MAX_RPC_METHOD_LABELS:
                method = "other"
            else:
                self._rpc_methods_seen.add(method)
        self._rpc_requests.labels(method=method, code=str(status_code)).inc()
        self._rpc_latency.labels(method=method).observe(seconds)

    def observe_prune(self, seconds: float) -> None:
        self._readings.last_prune = (seconds, time.time())

    def observe_snapshot(self, seconds: float) -> None:
        self._readings.last_snapshot = (seconds, time.time())

    def set_state_probe(self, probe: StateProbe) -> None:
        self._readings.state_probe = probe

    def set_history_probe(self, probe: HistoryProbe) -> None:
        self._readings.history_probe = probe

    def set_stall_probe(self, probe: StallProbe) -> None:
        self._readings.stall_probe = probe

    def set_server_probe(self, probe: ServerProbe) -> None:
        self._readings.server_probe = probe


class _StateReadings:
    """A prometheus_client custom collector: every value is read when ``/metrics`` is scraped."""

    def __init__(self) -> None:
        self.state_probe: StateProbe | None = None
        self.history_probe: HistoryProbe | None = None
        self.stall_probe: StallProbe | None = None
        self.server_probe: ServerProbe | None = None
        self.last_prune: tuple[float, float] | None = None  # (duration, finished at)
        self.last_snapshot: tuple[float, float] | None = None
        #: a broken probe fails every scrape: one line a minute
        self._probe_warning = ThrottledWarning(logger)

    def describe(self) -> list[Metric]:
        return []  # values are dynamic; skip registration-time collision checks

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        yield from self._state_metrics()
        yield from self._probe_metrics()
        yield from _last_run_metrics("prune", "prune of the task graph", self.last_prune, now)
        yield from _last_run_metrics("snapshot", "state snapshot written", self.last_snapshot, now)

    def _state_metrics(self) -> Iterator[Metric]:
        reading = _read_probe(self.state_probe, "state", self._probe_warning)
        if reading is None:
            return
        tasks = GaugeMetricFamily(
            "luigid_tasks", "Tasks known to the scheduler, by status", labels=["status"]
        )
        for status, count in sorted((reading.get("tasks_by_status") or {}).items()):
            tasks.add_metric([str(status)], float(count))
        yield tasks
        workers = GaugeMetricFamily(
            "luigid_workers", "Workers known to the scheduler, by state", labels=["state"]
        )
        workers.add_metric(["active"], float(reading.get("workers_active", 0)))
        workers.add_metric(["disabled"], float(reading.get("workers_disabled", 0)))
        yield workers

    def _probe_metrics(self) -> Iterator[Metric]:
        for probe, what, table in (
            (self.history_probe, "history", _HISTORY_METRICS),
            (self.stall_probe, "event loop", _STALL_METRICS),
            (self.server_probe, "server", _SERVER_METRICS),
        ):
            reading = _read_probe(probe, what, self._probe_warning)
            if reading is not None:
                for family, name, text, key in table:
                    yield family(name, text, value=float(reading.get(key, 0)))


#: (kind, name, help, key of the probe's reading) of each metric that is one value of a probe
_ProbeMetric = tuple[type[GaugeMetricFamily] | type[CounterMetricFamily], str, str, str]
_HISTORY_METRICS: tuple[_ProbeMetric, ...] = (
    (
        GaugeMetricFamily,
        "luigid_history_queue_depth",
        "Task-history events waiting to be written to the database",
        "queue_depth",
    ),
    (
        CounterMetricFamily,
        "luigid_history_write_failures",
        "Task-history database writes that failed",
        "write_failures",
    ),
)
_STALL_METRICS: tuple[_ProbeMetric, ...] = (
    (
        GaugeMetricFamily,
        "luigid_event_loop_longest_stall_seconds",
        "Longest time the event loop was held (requests waited) since start",
        "longest_seconds",
    ),
    (
        GaugeMetricFamily,
        "luigid_event_loop_longest_stall_on_cpu_seconds",
        "Longest part of one stall that the event loop's thread spent on the CPU, since start",
        "longest_on_cpu_seconds",
    ),
    (
        GaugeMetricFamily,
        "luigid_event_loop_recent_longest_stall_seconds",
        "Longest time the event loop was held in the last one to two minutes",
        "recent_longest_seconds",
    ),
    (
        CounterMetricFamily,
        "luigid_event_loop_long_stalls",
        f"Times the event loop was held for longer than {WARN_ABOVE * 1000:.0f} ms",
        "over_threshold",
    ),
)
_SERVER_METRICS: tuple[_ProbeMetric, ...] = (
    (
        GaugeMetricFamily,
        "luigid_open_connections",
        "HTTP connections open (keep-alive ones included)",
        "open_connections",
    ),
    (
        CounterMetricFamily,
        "luigid_accepts_refused",
        "Times accepting a connection failed for want of descriptors or memory (then paused)",
        "accepts_refused",
    ),
    (
        GaugeMetricFamily,
        "luigid_writes_refused",
        "1 while state-changing calls are refused because the change log cannot be written",
        "writes_refused",
    ),
    (
        CounterMetricFamily,
        "luigid_refused_writes",
        "State-changing calls answered 503 because their change could not be made durable",
        "writes_refused_calls",
    ),
    (
        GaugeMetricFamily,
        "luigid_resident_memory_bytes",
        "Resident memory of the luigid process",
        "resident_memory_bytes",
    ),
)


def _read_probe(probe: Any, what: str, warning: ThrottledWarning) -> Mapping[str, Any] | None:
    if probe is None:
        return None
    try:
        return probe()
    except Exception:  # a broken probe must cost its own metrics, never the whole scrape
        warning.warn(
            "metrics: the %s probe failed; its metrics are left out of this scrape", what, exc_info=True
        )
        return None


def _last_run_metrics(name: str, what: str, last: tuple[float, float] | None, now: float) -> Iterator[Metric]:
    if last is None:
        return
    duration, finished_at = last
    yield GaugeMetricFamily(
        f"luigid_last_{name}_duration_seconds", f"Duration of the last {what}", value=duration
    )
    yield GaugeMetricFamily(
        f"luigid_last_{name}_age_seconds",
        f"Seconds since the last {what} finished",
        value=max(0.0, now - finished_at),
    )
