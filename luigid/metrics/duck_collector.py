"""Adapter for a custom collector that has luigi's methods but not our base class.

Collectors written for luigi subclass ``luigi.metrics.MetricsCollector``, which luigid does
not import; they are accepted by their methods instead. The adapter forwards what the
object implements and gives our no-op default for the rest (notably the ``observe_*``
calls luigi's collectors have never heard of).
"""

from __future__ import annotations

from typing import Any

from luigid.metrics.collector import HistoryProbe, MetricsCollector, ServerProbe, StallProbe, StateProbe

#: methods without which an object cannot stand in for a collector
REQUIRED_METHODS = ("handle_task_started", "handle_task_failed", "handle_task_disabled", "handle_task_done")


def missing_methods(obj: Any) -> list[str]:
    return [name for name in REQUIRED_METHODS if not callable(getattr(obj, name, None))]


class DuckTypedCollector(MetricsCollector):
    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def _optional(self, name: str) -> Any:
        return getattr(self.wrapped, name, None)

    def handle_task_started(self, task: Any) -> None:
        self.wrapped.handle_task_started(task)

    def handle_task_failed(self, task: Any) -> None:
        self.wrapped.handle_task_failed(task)

    def handle_task_disabled(self, task: Any, config: Any) -> None:
        self.wrapped.handle_task_disabled(task, config)

    def handle_task_done(self, task: Any) -> None:
        self.wrapped.handle_task_done(task)

    def handle_task_statistics(self, task: Any, statistics: Any) -> None:
        method = self._optional("handle_task_statistics")
        if method is not None:
            method(task, statistics)

    def generate_latest(self) -> bytes | str | None:
        method = self._optional("generate_latest")
        return method() if method is not None else None

    def configure_http_handler(self, http_handler: Any) -> None:
        method = self._optional("configure_http_handler")
        if method is not None:
            method(http_handler)

    def observe_rpc(self, method: str, seconds: float, status_code: int) -> None:
        forward = self._optional("observe_rpc")
        if forward is not None:
            forward(method, seconds, status_code)

    def observe_prune(self, seconds: float) -> None:
        forward = self._optional("observe_prune")
        if forward is not None:
            forward(seconds)

    def observe_snapshot(self, seconds: float) -> None:
        forward = self._optional("observe_snapshot")
        if forward is not None:
            forward(seconds)

    def set_state_probe(self, probe: StateProbe) -> None:
        forward = self._optional("set_state_probe")
        if forward is not None:
            forward(probe)

    def set_history_probe(self, probe: HistoryProbe) -> None:
        forward = self._optional("set_history_probe")
        if forward is not None:
            forward(probe)

    def set_stall_probe(self, probe: StallProbe) -> None:
        forward = self._optional("set_stall_probe")
        if forward is not None:
            forward(probe)

    def set_server_probe(self, probe: ServerProbe) -> None:
        forward = self._optional("set_server_probe")
        if forward is not None:
            forward(probe)

    def close(self) -> None:
        forward = self._optional("close")
        if forward is not None:
            forward()
