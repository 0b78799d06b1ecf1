"""Builds the collector named by ``[scheduler] metrics_collector``, failing early and in one line."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from luigid.config import METRICS_COLLECTORS, ConfigError, config_error
from luigid.metrics.collector import MetricsCollector, NoMetricsCollector
from luigid.metrics.duck_collector import DuckTypedCollector, missing_methods


def make_collector(
    scheduler_config: Any, sections: Mapping[str, Mapping[str, Any]] | None
) -> MetricsCollector:
    """Return the configured collector; raise ``ConfigError`` if it cannot be built."""
    which = str(getattr(scheduler_config, "metrics_collector", "default") or "default")
    if which in ("default", "none"):
        return NoMetricsCollector()
    if which == "prometheus":
        _require_package("prometheus_client", "prometheus-client", which)
        from luigid.metrics.prometheus_collector import PrometheusCollector

        return PrometheusCollector.from_sections(sections)
    if which == "datadog":
        _require_package("datadog", "datadog", which)
        from luigid.metrics.datadog_collector import DatadogCollector

        return DatadogCollector.from_sections(sections)
    if which == "custom":
        return _custom_collector(getattr(scheduler_config, "metrics_custom_import", None), sections or {})
    raise config_error(
        sections or {},
        "scheduler",
        "metrics_collector",
        f"expected one of {', '.join(METRICS_COLLECTORS)}, got {which!r}",
    )


def _require_package(module: str, distribution: str, which: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"luigid: [scheduler] metrics_collector = {which} needs the {distribution!r} package: "
            f"pip install {distribution} (or luigid[{which}])"
        ) from None


def _custom_collector(dotted: str | None, sections: Mapping[str, Any]) -> MetricsCollector:
    def refuse(problem: str) -> ConfigError:
        return config_error(sections, "scheduler", "metrics_custom_import", problem)

    if not dotted:
        raise refuse("must name a collector class (module.ClassName) when metrics_collector = custom")
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name:
        raise refuse(f"expected 'package.module.ClassName', got {dotted!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is the operator's to fix, in one line
        raise refuse(f"cannot import module {module_name!r}: {_one_line(exc)}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise refuse(f"module {module_name!r} has no attribute {class_name!r}")
    if not isinstance(cls, type):
        raise refuse(f"{dotted!r} is not a class")
    missing = missing_methods(cls) or sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise refuse(
            f"{dotted} does not implement the metrics collector interface "
            f"(missing {', '.join(missing)}); see docs/metrics.md"
        )
    try:
        instance = cls()
    except Exception as exc:
        raise refuse(f"could not create {dotted}: {_one_line(exc)}") from None
    if isinstance(instance, MetricsCollector):
        return instance
    return DuckTypedCollector(instance)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
