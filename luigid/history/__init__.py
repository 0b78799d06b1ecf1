"""Task history: luigi's history database, recorded off the scheduler's hot path, and its pages.

Importing this package does not need SQLAlchemy; ``DbTaskHistory.from_config`` reports its
absence (or a missing database driver) as a ConfigError.
"""

from luigid.history.config import HistoryConfig, parse_history_config
from luigid.history.handlers import history_routes
from luigid.history.recorder import DbTaskHistory

__all__ = ["DbTaskHistory", "HistoryConfig", "history_routes", "parse_history_config"]
