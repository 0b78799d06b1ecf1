"""Logging set-up for the daemon, in luigid's order of precedence:

1. ``[core] no_configure_logging = true``: leave logging alone;
2. ``[core] logging_conf_file``: ``logging.config.fileConfig``;
3. a ``[logging]`` section (TOML configs): ``logging.config.dictConfig``;
4. ``--logdir`` (foreground): ``<logdir>/luigi-server.log``;
5. otherwise luigi's format on stderr.

With ``--background`` the daily-rotated ``<logdir>/luigi-server.log`` is always added, as
luigi's daemon does: once detached it is the only place an operator can read.

Requests are logged one line each at debug level, and as warnings when slower than
``[scheduler] slow_request_seconds`` (see ``slow_request_seconds``).
"""

from __future__ import annotations

import logging
import logging.config
import logging.handlers
import os
from typing import Any

from luigid.config import LuigidConfig, config_error

LOG_FORMAT = "%(asctime)s %(name)s[%(process)s] %(levelname)s: %(message)s"
LOG_FILE = "luigi-server.log"
#: requests slower than this are logged as warnings unless the config says otherwise
DEFAULT_SLOW_REQUEST_SECONDS = 1.0


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "yes", "true", "on")


def rotating_handler(logdir: str) -> logging.Handler:
    """Daily rotation, a week kept, as luigi's daemon does in the background."""
    handler = logging.handlers.TimedRotatingFileHandler(
        os.path.join(logdir, LOG_FILE), when="midnight", backupCount=7, encoding="utf8"
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def configure(config: LuigidConfig, logdir: str | None = None, background: bool = False) -> str:
    """Set up logging; returns which rule applied (for the start-up log line)."""
    rule = _apply_rules(config, logdir, background)
    if background and logdir:
        os.makedirs(logdir, mode=0o755, exist_ok=True)
        logging.getLogger().addHandler(rotating_handler(logdir))
        rule += f", and to {os.path.join(logdir, LOG_FILE)}"
    return rule


def _apply_rules(config: LuigidConfig, logdir: str | None, background: bool) -> str:
    core = config.sections.get("core", {})
    if _truthy(core.get("no_configure_logging", False)):
        return "left alone ([core] no_configure_logging)"
    conf_file = core.get("logging_conf_file")
    if conf_file:
        if not os.path.exists(str(conf_file)):
            raise config_error(config.sections, "core", "logging_conf_file", f"{conf_file} does not exist")
        try:
            logging.config.fileConfig(str(conf_file), disable_existing_loggers=False)
        except Exception as exc:
            problem = f"{conf_file} could not be loaded: {exc}"
            raise config_error(config.sections, "core", "logging_conf_file", problem) from exc
        return f"from {conf_file}"
    section = config.sections.get("logging")
    if isinstance(section, dict) and section and "version" in section:
        try:
            logging.config.dictConfig(_plain(section))
        except Exception as exc:
            raise config_error(config.sections, "logging", "version", f"could not be applied: {exc}") from exc
        return "from the [logging] section"
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if background:
        return "at INFO level"
    if logdir:
        os.makedirs(logdir, mode=0o755, exist_ok=True)
        handler: logging.Handler = rotating_handler(logdir)
        where = os.path.join(logdir, LOG_FILE)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        where = "stderr"
    root.addHandler(handler)
    return f"to {where}"


def slow_request_seconds(config: LuigidConfig) -> float:
    """``[scheduler] slow_request_seconds``: the threshold for slow-request warnings."""
    return config.scheduler.slow_request_seconds


def _plain(value: Any) -> Any:
    """TOML sections may hold read-only mappings; dictConfig wants plain dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
