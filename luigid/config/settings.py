"""The typed configuration records and building them from the sections read.

``load_config()`` reads the same files luigi reads, in luigi's order, and returns a frozen
``LuigidConfig`` (built once at start and passed in, never a global). ``[scheduler]`` and
``[cors]`` become typed records here; other subsystems parse their own sections from
``LuigidConfig.sections`` with the ``luigid.config.values`` helpers.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from luigid.config.files import SYSTEM_DIR, ConfigSections, config_files, read_sections
from luigid.config.values import (
    BadValue,
    ConfigError,
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_non_negative_float,
    as_non_negative_int,
    as_optional_str,
    as_origins,
    as_str,
    config_error,
    get_int,
    location,
    lookup,
)
from luigid.core.model import RetryPolicy

METRICS_COLLECTORS = ("default", "none", "prometheus", "datadog", "custom")


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
    slow_request_seconds: float = 1.0
    #: time every event-loop callback and name what held the loop in stall warnings (debugging)
    stall_trace: bool = False
    #: when the change log is fsynced: always (before each reply), everysec, no
    journal_fsync: str = "everysec"
    #: most tasks whose task_list/graph JSON and display name are kept between replies
    #: (luigid.core.replycache; 0 keeps none)
    reply_cache_tasks: int = 100_000

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

    def allows(self, origin: str) -> bool:
        """Whether a page from ``origin`` may use luigid (luigi's rules; "*" is never an origin)."""
        if not self.enabled:
            return False
        if origin == "null":
            return self.allow_null_origin
        return self.allow_any_origin or (origin in self.allowed_origins and origin != "*")


@dataclass(frozen=True)
class LuigidConfig:
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    resources: dict[str, int] = field(default_factory=dict)
    cors: CorsConfig = field(default_factory=CorsConfig)
    #: every section as read (a ``ConfigSections`` when built by ``load_config``), for
    #: subsystems (history, metrics, email...) to parse their own with the ``get_*`` helpers
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the files read, in order (later ones override earlier ones)
    files: tuple[str, ...] = ()
    #: things luigi would warn about (deprecated names, unknown keys); the CLI logs them
    warnings: tuple[str, ...] = ()


R = TypeVar("R")

_TYPE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "float": as_float,
    "int": as_int,
    "bool": as_bool,
    "str": as_str,
    "str | None": as_optional_str,
}


def _parsers_for(record: type, **special: Callable[[Any], Any]) -> dict[str, Callable[[Any], Any]]:
    """One parser per field of ``record``: by its annotation, unless given in ``special``."""
    return {f.name: special.get(f.name) or _TYPE_PARSERS[str(f.type)] for f in dataclasses.fields(record)}


_SCHEDULER_PARSERS = _parsers_for(
    SchedulerConfig,
    metrics_collector=as_choice(METRICS_COLLECTORS),
    state_snapshot_interval=as_non_negative_float,  # 0 turns snapshots off
    slow_request_seconds=as_non_negative_float,
    journal_fsync=as_choice(("always", "everysec", "no")),
    reply_cache_tasks=as_non_negative_int,
)
_CORS_PARSERS = _parsers_for(CorsConfig, allowed_origins=as_origins)


def _record_from(
    record: Callable[..., R],
    parsers: Mapping[str, Callable[[Any], Any]],
    sections: Mapping[str, Any],
    section: str,
    overrides: Mapping[str, Any] | None,
    source: str,
) -> tuple[R, dict[str, str]]:
    """Build ``record`` from a section, then overrides on top; also say where each value came from."""
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for name, parse in parsers.items():
        found = lookup(sections, section, name)
        if found is None:
            continue
        spelling, raw = found
        try:
            values[name] = parse(raw)
        except BadValue as bad:
            raise config_error(sections, section, spelling, str(bad)) from None
        where[name] = location(sections, section, spelling)
    for key, raw in (overrides or {}).items():
        name = key.replace("-", "_")
        if name not in parsers:
            raise ConfigError(f"luigid: config error in {source} [{section}] {key}: unknown key")
        where[name] = f"{source} [{section}] {name}"
        try:
            values[name] = parsers[name](raw)
        except BadValue as bad:
            raise ConfigError(f"luigid: config error in {where[name]}: {bad}") from None
    return record(**values), where


def scheduler_config_from(
    sections: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    source: str = "keyword argument",
) -> SchedulerConfig:
    """The ``[scheduler]`` record; ``overrides`` (Python values or text) beat the files.

    ``Scheduler(**kwargs)`` passes its kwargs here, as luigi's ``scheduler(**kwargs)``.
    ``source`` names the overrides in error messages.
    """
    config, where = _record_from(
        SchedulerConfig, _SCHEDULER_PARSERS, sections, "scheduler", overrides, source
    )
    if config.metrics_collector == "custom" and not config.metrics_custom_import:
        raise ConfigError(
            f"luigid: config error in {where['metrics_collector']}: custom needs "
            "[scheduler] metrics_custom_import = module.ClassName"
        )
    return config


def cors_config_from(sections: Mapping[str, Any]) -> CorsConfig:
    """The ``[cors]`` record; allowed_origins is a JSON list in cfg files, as in luigi."""
    config, _ = _record_from(CorsConfig, _CORS_PARSERS, sections, "cors", None, "")
    return config


def resources_from(sections: Mapping[str, Any]) -> dict[str, int]:
    """``[resources]`` as name -> amount; like luigi, keys inherited from [DEFAULT] are not resources."""
    origins = getattr(sections, "origins", {})
    resources: dict[str, int] = {}
    for name in sections.get("resources", {}):
        origin = origins.get(("resources", name))
        if origin is not None and origin.section != "resources":
            continue
        amount = get_int(sections, "resources", name, 0)
        if amount < 0:
            raise config_error(sections, "resources", name, f"expected an integer of 0 or more, got {amount}")
        resources[name] = amount
    return resources


def _warnings(files: list[tuple[str, str]], sections: ConfigSections) -> list[str]:
    notes = [
        f"{path}: files named client.cfg are deprecated, rename it to luigi.cfg"
        for path, _ in files
        if os.path.basename(path) == "client.cfg"
    ]
    for section, parsers in (("scheduler", _SCHEDULER_PARSERS), ("cors", _CORS_PARSERS)):
        for key in sections.get(section, {}):
            origin = sections.origins[(section, key)]
            if origin.section != section:
                continue  # inherited from [DEFAULT]
            place = f"{origin.path} [{section}] {key}"
            if key.replace("-", "_") not in parsers:
                notes.append(f"{place}: unknown key, ignored")
            elif "-" in key:
                notes.append(f"{place}: dashes in key names are deprecated, write {key.replace('-', '_')}")
    return notes


def load_config(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    *,
    system_dir: str = SYSTEM_DIR,
) -> LuigidConfig:
    """Read luigi's config files and build the typed config.

    ``overrides`` are ``[scheduler]`` keys from the command line (``None`` values are
    ignored: "flag not given").  ``env`` defaults to ``os.environ`` and ``cwd`` to the
    working directory; ``system_dir`` replaces /etc/luigi (for tests).  Nothing global is
    read or changed beyond those.
    """
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd
    files = config_files(env, cwd, system_dir)
    sections = read_sections(files, env)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    return LuigidConfig(
        scheduler=scheduler_config_from(sections, given, source="command line"),
        resources=resources_from(sections),
        cors=cors_config_from(sections),
        sections=sections,
        files=tuple(path for path, _ in files),
        warnings=tuple(_warnings(files, sections)),
    )
