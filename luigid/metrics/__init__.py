"""Metrics collectors for the scheduler: luigi's interface plus luigid's operational readings."""

from luigid.metrics.collector import (
    HistoryProbe,
    MetricsCollector,
    NoMetricsCollector,
    ServerProbe,
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
    "ServerProbe",
    "StallProbe",
    "StateProbe",
    "make_collector",
]
