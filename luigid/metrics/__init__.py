"""Metrics collectors for the scheduler: luigi's interface plus luigid's operational readings."""

from luigid.metrics.collector import (
    HistoryProbe,
    MetricsCollector,
    NoMetricsCollector,
    StallProbe,
    StateProbe,
)
from luigid.metrics.factory import make_collector
from luigid.metrics.handler import MetricsHandler

__all__ = [
    "HistoryProbe",
    "MetricsCollector",
    "MetricsHandler",
    "NoMetricsCollector",
    "StallProbe",
    "StateProbe",
    "make_collector",
]
