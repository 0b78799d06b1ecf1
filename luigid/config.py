"""Typed configuration, built once at start and passed in (never a global).

CONTRACT (filled in by the config work): ``load_config(overrides)`` reads luigi's files in
luigi's order and returns a frozen ``LuigidConfig``; a bad value raises ``ConfigError``
whose message is one line naming the file, section and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from luigid.model import RetryPolicy

METRICS_COLLECTORS = ("default", "none", "prometheus", "datadog", "custom")


class ConfigError(Exception):
    """A configuration problem, reported to the operator as one line."""


@dataclass(frozen=True)
class SchedulerConfig:
    """The ``[scheduler]`` section, with luigi 3.8.1's defaults."""

    retry_delay: float = 900.0
    remove_delay: float = 600.0
    worker_disconnect_delay: float = 60.0
    state_path: str = "/var/lib/luigi-server/state.pickle"
    batch_emails: bool = False
    disable_window: int = 3600
    retry_count: int = 999999999
    disable_hard_timeout: int = 999999999
    disable_persist: int = 86400
    max_shown_tasks: int = 100000
    max_graph_nodes: int = 100000
    record_task_history: bool = False
    prune_on_get_work: bool = False
    pause_enabled: bool = True
    send_messages: bool = True
    metrics_collector: str = "default"
    metrics_custom_import: str | None = None
    stable_done_cooldown_secs: int = 10
    # luigid's own additions (not in luigi)
    state_snapshot_interval: float = 60.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_count, self.disable_hard_timeout, self.disable_window)


@dataclass(frozen=True)
class CorsConfig:
    """The ``[cors]`` section, with luigi's defaults."""

    enabled: bool = False
    allowed_origins: tuple[str, ...] = ()
    allow_any_origin: bool = False
    allow_null_origin: bool = False
    max_age: int = 86400
    allowed_methods: str = "GET, OPTIONS"
    allowed_headers: str = "Accept, Content-Type, Origin"
    exposed_headers: str = ""
    allow_credentials: bool = False


@dataclass(frozen=True)
class LuigidConfig:
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    resources: dict[str, int] = field(default_factory=dict)
    cors: CorsConfig = field(default_factory=CorsConfig)
    #: every section as read, for subsystems (history, metrics, email...) to parse their own
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_config(overrides: dict[str, Any] | None = None) -> LuigidConfig:
    """Provisional: defaults plus ``[scheduler]`` overrides (file reading lands with the config work)."""
    return LuigidConfig(scheduler=SchedulerConfig(**(overrides or {})))
