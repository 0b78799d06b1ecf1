"""``metrics_collector = datadog``: luigi's Datadog metrics and events, sent over DogStatsD (UDP).

luigi posts its events to the Datadog HTTP API from inside the scheduler, a blocking call
per task event. Here metrics and events both go to the local agent as non-blocking UDP
datagrams (``DogStatsd.event`` is forwarded by the agent to the same event stream), so a slow
or absent agent costs nothing. ``api_key``/``app_key`` are read for config compatibility; the
agent holds its own key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datadog.dogstatsd import DogStatsd

from luigid.config import get_int, get_str
from luigid.core.throttled_log import SUPPRESSED_NOTE, Throttle
from luigid.metrics.collector import MetricsCollector

logger = logging.getLogger("luigid.metrics")

#: the datadog client warns once per dropped datagram; with the agent down that is 2-3 per task event
SEND_WARNING_INTERVAL = 60.0


class _ThrottleSendWarnings(logging.Filter):
    """Let through one of the client's "Error submitting packet" warnings per interval."""

    def __init__(self) -> None:
        super().__init__()
        self._throttle = Throttle(SEND_WARNING_INTERVAL)

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Error submitting packet"):
            return True
        held = self._throttle.due()
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg}{SUPPRESSED_NOTE % held}"
        return True


def _throttle_client_warnings() -> None:
    client_logger = logging.getLogger("datadog.dogstatsd")
    if not any(isinstance(f, _ThrottleSendWarnings) for f in client_logger.filters):
        client_logger.addFilter(_ThrottleSendWarnings())


@dataclass(frozen=True)
class DatadogSettings:
    """The ``[datadog]`` section, with luigi's defaults."""

    api_key: str = "dummy_api_key"
    app_key: str = "dummy_app_key"
    default_tags: str = "application:luigi"
    environment: str = "development"
    metric_namespace: str = "luigi"
    statsd_host: str = "localhost"
    statsd_port: int = 8125

    @classmethod
    def from_sections(cls, sections: Mapping[str, Mapping[str, Any]] | None) -> DatadogSettings:
        sections = sections or {}
        base = cls()

        def text(key: str) -> str:
            return get_str(sections, "datadog", key, getattr(base, key))

        return cls(
            api_key=text("api_key"),
            app_key=text("app_key"),
            default_tags=text("default_tags"),
            environment=text("environment"),
            metric_namespace=text("metric_namespace"),
            statsd_host=text("statsd_host"),
            statsd_port=get_int(sections, "datadog", "statsd_port", base.statsd_port),
        )

    def common_tags(self) -> list[str]:
        extra = [tag for tag in self.default_tags.split(",") if tag] if self.default_tags else []
        return [f"environment:{self.environment}", *extra]


class DatadogCollector(MetricsCollector):
    def __init__(self, settings: DatadogSettings) -> None:
        self.settings = settings
        self._common_tags = settings.common_tags()
        self.statsd = DogStatsd(
            host=settings.statsd_host,
            port=settings.statsd_port,
            disable_telemetry=True,
            origin_detection_enabled=False,
            socket_timeout=0,  # never wait on the agent
        )
        _throttle_client_warnings()
        self._resolve_agent()

    @classmethod
    def from_sections(cls, sections: Mapping[str, Mapping[str, Any]] | None) -> DatadogCollector:
        return cls(DatadogSettings.from_sections(sections))

    def _resolve_agent(self) -> None:
        # open (and resolve) the UDP socket at startup rather than on the first task event
        try:
            self.statsd.get_socket()
        except OSError as exc:
            logger.warning(
                "datadog: cannot reach the agent at %s:%s yet (%s); will retry on each send",
                self.settings.statsd_host,
                self.settings.statsd_port,
                exc,
            )

    # -- luigi's task events --------------------------------------------------------------

    def _task_tags(self, task: Any) -> list[str]:
        params = getattr(task, "params", None) or {}
        return [f"task_name:{task.family}", *(f"{key}:{value}" for key, value in params.items())]

    def _metric(self, name: str) -> str:
        return f"{self.settings.metric_namespace}.{name}"

    def _emit(self, metric: str, task_tags: list[str], state: str, title: str, text: str, alert: str) -> None:
        self.statsd.increment(self._metric(metric), 1, tags=task_tags + self._common_tags)
        self._event(title, text, [*task_tags, f"task_state:{state}"], alert)

    def _event(self, title: str, text: str, tags: list[str], alert: str) -> None:
        priority = "low" if alert == "info" else "normal"
        self.statsd.event(title, text, alert_type=alert, priority=priority, tags=tags + self._common_tags)

    def handle_task_started(self, task: Any) -> None:
        self._emit(
            "task.started",
            self._task_tags(task),
            "STARTED",
            "Luigi: A task has been started!",
            f"A task has been started in the pipeline named: {task.family}",
            "info",
        )

    def handle_task_failed(self, task: Any) -> None:
        self._emit(
            "task.failed",
            self._task_tags(task),
            "FAILED",
            "Luigi: A task has failed!",
            f"A task has failed in the pipeline named: {task.family}",
            "error",
        )

    def handle_task_disabled(self, task: Any, config: Any) -> None:
        text = (
            f"A task has been disabled in the pipeline named: {task.family}. "
            f"The task has failed {config.retry_count} times in the last {config.disable_window} "
            f"seconds, so it is being disabled for {config.disable_persist} seconds."
        )
        self._emit(
            "task.disabled",
            self._task_tags(task),
            "DISABLED",
            "Luigi: A task has been disabled!",
            text,
            "error",
        )

    def handle_task_done(self, task: Any) -> None:
        if task.time_running is None:
            return  # found already complete: it did not run here, so there is nothing to report
        tags = self._task_tags(task)
        self.statsd.gauge(
            self._metric("task.execution_time"),
            task.updated - task.time_running,
            tags=tags + self._common_tags,
        )
        self._emit(
            "task.done",
            tags,
            "DONE",
            "Luigi: A task has been completed!",
            f"A task has completed in the pipeline named: {task.family}",
            "info",
        )

    def close(self) -> None:
        self.statsd.close_socket()
