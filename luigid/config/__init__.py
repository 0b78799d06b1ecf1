"""Typed configuration, built once at start and passed in (never a global).

``load_config()`` reads the same files luigi reads, in luigi's order, and returns a frozen
``LuigidConfig``. Every value remembers the file it came from, so a bad value becomes a
``ConfigError`` whose message is one line naming file, section and key. Subsystems parse
their own sections from ``LuigidConfig.sections`` with the ``get_*`` helpers, which produce
errors in the same style.

* ``values``: ``ConfigError``, the value parsers and the ``get_*``/``config_error`` helpers;
* ``files``: which files to read, reading them, ``%(key)s`` and ``${ENV}`` expansion;
* ``settings``: the typed records (``SchedulerConfig``, ``CorsConfig``, ``LuigidConfig``) and
  building them (``load_config``);
* ``commands``: the exit codes, one-line failures and config reading of the offline commands
  (``luigid user``, ``luigid state``).
"""

from luigid.config.files import (
    CFG_FILES,
    SYSTEM_DIR,
    TOML_FILES,
    ConfigSections,
    Origin,
    config_files,
    read_sections,
)
from luigid.config.settings import (
    METRICS_COLLECTORS,
    CorsConfig,
    LuigidConfig,
    SchedulerConfig,
    cors_config_from,
    load_config,
    resources_from,
    scheduler_config_from,
)
from luigid.config.values import (
    ConfigError,
    config_error,
    get_bool,
    get_choice,
    get_float,
    get_int,
    get_list,
    get_size,
    get_str,
)

__all__ = [
    "CFG_FILES",
    "METRICS_COLLECTORS",
    "SYSTEM_DIR",
    "TOML_FILES",
    "ConfigError",
    "ConfigSections",
    "CorsConfig",
    "LuigidConfig",
    "Origin",
    "SchedulerConfig",
    "config_error",
    "config_files",
    "cors_config_from",
    "get_bool",
    "get_choice",
    "get_float",
    "get_int",
    "get_list",
    "get_size",
    "get_str",
    "load_config",
    "read_sections",
    "resources_from",
    "scheduler_config_from",
]
