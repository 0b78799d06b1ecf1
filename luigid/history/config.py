"""The ``[task_history]`` section, parsed once at startup into a typed record.

``db_connection`` and its default are luigi's; the other keys are luigid's own and exist to
keep the recorder bounded (queue, batch, cache sizes) and the database pruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from luigid.config import ConfigError

SECTION = "task_history"
DEFAULT_DB_CONNECTION = "sqlite:///luigi-task-hist.db"


@dataclass(frozen=True)
class HistoryConfig:
    db_connection: str = DEFAULT_DB_CONNECTION
    #: runs whose last event is older than this many days are deleted; None keeps everything
    retention_days: float | None = None
    #: events waiting for the writer; beyond this new events are dropped (and counted)
    queue_size: int = 10000
    #: events written per transaction
    batch_size: int = 500
    #: seconds the writer waits for a batch to fill before writing what it has
    flush_interval: float = 1.0
    #: task ids whose current run the writer remembers (least recently used are forgotten)
    max_tracked_runs: int = 100000
    #: rows shown at most on one listing page
    page_size: int = 200


def _positive_int(section: Mapping[str, Any], key: str, default: int) -> int:
    raw = section.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"[{SECTION}] {key}: expected a positive integer, got {raw!r}")
    return value


def _positive_float(section: Mapping[str, Any], key: str, default: float | None) -> float | None:
    raw = section.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"[{SECTION}] {key}: expected a positive number, got {raw!r}")
    return value


def parse_history_config(sections: Mapping[str, Mapping[str, Any]]) -> HistoryConfig:
    """Read ``[task_history]`` from every section as loaded; raise ConfigError (one line) on bad values."""
    section = sections.get(SECTION) or {}
    db_connection = str(section.get("db_connection") or "").strip() or DEFAULT_DB_CONNECTION
    # "0" is accepted as an explicit "off", like leaving the key out
    raw_retention = str(section.get("retention_days") or "").strip()
    retention = (
        None if raw_retention in ("", "0", "0.0") else _positive_float(section, "retention_days", None)
    )
    flush_interval = _positive_float(section, "flush_interval", HistoryConfig.flush_interval)
    assert flush_interval is not None
    return HistoryConfig(
        db_connection=db_connection,
        retention_days=retention,
        queue_size=_positive_int(section, "queue_size", HistoryConfig.queue_size),
        batch_size=_positive_int(section, "batch_size", HistoryConfig.batch_size),
        flush_interval=flush_interval,
        max_tracked_runs=_positive_int(section, "max_tracked_runs", HistoryConfig.max_tracked_runs),
        page_size=_positive_int(section, "page_size", HistoryConfig.page_size),
    )
