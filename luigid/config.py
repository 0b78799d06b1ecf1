"""Typed configuration, built once at start and passed in (never a global).

``load_config()`` reads the same files luigi reads, in luigi's order, and returns a frozen
``LuigidConfig``.  Every value remembers the file it came from, so a bad value becomes a
``ConfigError`` whose message is one line naming file, section and key.  Subsystems parse
their own sections from ``LuigidConfig.sections`` with the ``get_*`` helpers below, which
produce errors in the same style.
"""

from __future__ import annotations

import collections
import configparser
import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from luigid.core.model import RetryPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

METRICS_COLLECTORS = ("default", "none", "prometheus", "datadog", "custom")

#: where luigi looks, in reading order; relative names are taken from the working directory
CFG_FILES = ("{system}/client.cfg", "{system}/luigi.cfg", "client.cfg", "luigi.cfg")
TOML_FILES = ("{system}/luigi.toml", "luigi.toml")
SYSTEM_DIR = "/etc/luigi"

#: LUIGI_CONFIG_PARSER values (and LUIGI_CONFIG_PATH extensions) luigi knows, and the syntax each means
_PARSER_KINDS = {"cfg": "cfg", "conf": "cfg", "ini": "cfg", "toml": "toml"}

_ENV_REF = re.compile(r"\$\{([^}]+)\}")


class ConfigError(Exception):
    """A configuration problem, reported to the operator as one line."""

    def __init__(self, message: str) -> None:
        # Values may hold newlines (multi-line cfg values); the operator gets one line.
        super().__init__(" ".join(message.split()))


class Origin(NamedTuple):
    """Where a value was written: the file (or other source) and the section it sat in."""

    path: str
    section: str


class ConfigSections(dict[str, dict[str, Any]]):
    """Every section as read: ``{section: {key: value}}``, plus each value's origin.

    cfg values are strings with ``%(x)s`` and ``${ENV}`` already expanded, and each
    section also holds the ``[DEFAULT]`` keys it inherits (configparser's model).  TOML
    values keep their TOML types.  A value whose expansion failed is kept raw and its
    error is raised only when someone asks for it, so a section luigid never reads (a
    worker's, say) cannot stop the daemon from starting.
    """

    def __init__(self) -> None:
        super().__init__()
        self.origins: dict[tuple[str, str], Origin] = {}
        self.deferred: dict[tuple[str, str], str] = {}


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


# ---------------------------------------------------------------------------------------
# Value parsing: each parser takes a cfg string, a TOML value or a Python value.


class _BadValue(ValueError):
    """A value that does not parse; the caller adds file, section and key."""


def _as_bool(value: Any) -> bool:
    # luigi's BoolParameter accepts exactly true/false, in any case.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _BadValue(f"expected true or false, got {value!r}")


def _as_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _BadValue(f"expected an integer, got {value!r}")


def _as_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _BadValue(f"expected a number, got {value!r}") from None
    else:
        raise _BadValue(f"expected a number, got {value!r}")
    if math.isnan(number):
        raise _BadValue(f"expected a number, got {value!r}")
    return number


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a TOML number where text is due: luigi takes it as is
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise _BadValue(f"expected text, got {value!r}")


def _as_optional_str(value: Any) -> str | None:
    # luigi's OptionalStrParameter: an empty value means "not set".
    if value is None:
        return None
    text = _as_str(value)
    return text or None


def _as_list(value: Any) -> tuple[Any, ...]:
    # luigi's ListParameter takes JSON text; a TOML array is taken directly.
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, str):
        if not value.strip():
            return ()
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return tuple(parsed)
    raise _BadValue(f'expected a JSON list such as ["a", "b"], got {value!r}')


def _as_str_list(value: Any) -> tuple[str, ...]:
    items = _as_list(value)
    for item in items:
        if not isinstance(item, str):
            raise _BadValue(f"expected a list of strings, got {value!r}")
    return items


def _as_choice(choices: Iterable[str]) -> Callable[[Any], str]:
    allowed = tuple(choices)

    def parse(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise _BadValue(f"expected one of {', '.join(allowed)}, got {value!r}")

    return parse


def _as_non_negative_float(value: Any) -> float:
    number = _as_float(value)
    if number < 0:
        raise _BadValue(f"expected a number of 0 or more, got {value!r}")
    return number


def _as_origins(value: Any) -> tuple[str, ...]:
    # luigi drops "*" and "null" here: those are switched on by allow_any/null_origin.
    kept: list[str] = []
    for origin in _as_str_list(value):
        if origin not in ("*", "null") and origin not in kept:
            kept.append(origin)
    return tuple(kept)


# ---------------------------------------------------------------------------------------
# Helpers for subsystems: look a key up (underscore or dash spelling) and parse it.

T = TypeVar("T")


def _location(sections: Mapping[str, Any], section: str, key: str) -> str:
    origins = getattr(sections, "origins", {})
    origin = origins.get((section, key))
    if origin is None:
        return f"[{section}] {key}"
    return f"{origin.path} [{origin.section}] {key}"


def config_error(sections: Mapping[str, Any], section: str, key: str, problem: str) -> ConfigError:
    """A ``ConfigError`` for ``[section] key`` naming the file its value came from."""
    return ConfigError(f"luigid: config error in {_location(sections, section, key)}: {problem}")


def _lookup(sections: Mapping[str, Any], section: str, key: str) -> tuple[str, Any] | None:
    """The (key as written, value) for ``key``; like luigi, the underscore spelling wins."""
    values = sections.get(section)
    if not values:
        return None
    for spelling in (key.replace("-", "_"), key.replace("_", "-")):
        if spelling in values:
            problem = getattr(sections, "deferred", {}).get((section, spelling))
            if problem is not None:
                raise config_error(sections, section, spelling, problem)
            return spelling, values[spelling]
    return None


def _get(sections: Mapping[str, Any], section: str, key: str, default: T, parse: Callable[[Any], Any]) -> Any:
    found = _lookup(sections, section, key)
    if found is None:
        return default
    spelling, value = found
    try:
        return parse(value)
    except _BadValue as bad:
        raise config_error(sections, section, spelling, str(bad)) from None


def get_str(sections: Mapping[str, Any], section: str, key: str, default: T) -> str | T:
    return _get(sections, section, key, default, _as_str)


def get_bool(sections: Mapping[str, Any], section: str, key: str, default: T) -> bool | T:
    return _get(sections, section, key, default, _as_bool)


def get_int(sections: Mapping[str, Any], section: str, key: str, default: T) -> int | T:
    return _get(sections, section, key, default, _as_int)


def get_float(sections: Mapping[str, Any], section: str, key: str, default: T) -> float | T:
    return _get(sections, section, key, default, _as_float)


def get_list(sections: Mapping[str, Any], section: str, key: str, default: T) -> tuple[Any, ...] | T:
    """A list value: JSON text in a cfg file (as luigi's ListParameter), an array in TOML."""
    return _get(sections, section, key, default, _as_list)


def get_choice(
    sections: Mapping[str, Any], section: str, key: str, choices: Iterable[str], default: T
) -> str | T:
    return _get(sections, section, key, default, _as_choice(choices))


# ---------------------------------------------------------------------------------------
# Reading files.


class _CaseKeepingParser(configparser.ConfigParser):
    """luigi keeps key case (its parser's optionxform is ``str``)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


# A section name no file can contain, so a file's [DEFAULT] reads as an ordinary section and
# its own keys can be told apart from inherited ones.
_NO_DEFAULT_SECTION = "\x00luigid"


def _read_cfg_file(path: str) -> dict[str, dict[str, str]]:
    parser = _CaseKeepingParser(interpolation=None, default_section=_NO_DEFAULT_SECTION)
    where = f"luigid: config error in {path}"
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh, source=path)
    except OSError as err:
        raise ConfigError(f"{where}: cannot read the file: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: the file is not UTF-8 text") from None
    except configparser.DuplicateSectionError as err:
        raise ConfigError(f"{where} [{err.section}] line {err.lineno}: section appears twice") from None
    except configparser.DuplicateOptionError as err:
        raise ConfigError(
            f"{where} [{err.section}] {err.option} line {err.lineno}: key appears twice in the section"
        ) from None
    except configparser.MissingSectionHeaderError as err:
        line = err.line.strip()
        raise ConfigError(f"{where} line {err.lineno}: {line!r} is not inside a [section]") from None
    except configparser.ParsingError as err:
        lineno = err.errors[0][0]
        raise ConfigError(f"{where} line {lineno}: cannot parse the line, expected key = value") from None
    return {name: dict(parser.items(name, raw=True)) for name in parser.sections()}


def _read_toml_file(path: str) -> dict[str, dict[str, Any]]:
    where = f"luigid: config error in {path}"
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as err:
        raise ConfigError(f"{where}: cannot read the file: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{where}: not valid TOML: {err}") from None
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: top-level key {name!r} must be inside a [section] table")
    return data


def _expand_env(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise _BadValue(f"environment variable {name} is not set (used as ${{{name}}})")
        return env[name]

    return _ENV_REF.sub(replace, value)


def _interpolation_problem(err: configparser.InterpolationError) -> str:
    if isinstance(err, configparser.InterpolationMissingOptionError):
        return f"%({err.reference})s names a key that is not set in [{err.section}] or [DEFAULT]"
    if isinstance(err, configparser.InterpolationDepthError):
        return "%(...)s references nest too deeply (a reference loop?)"
    return f"bad %-interpolation ({err.message}); write %% for a literal %"


def _resolve_cfg(paths: list[str], env: Mapping[str, str]) -> ConfigSections:
    """Merge cfg files (later files win) and expand every value as luigi's parser would on read."""
    default = "DEFAULT"
    merged: dict[str, dict[str, str]] = {default: {}}
    written: dict[tuple[str, str], Origin] = {}
    for path in paths:
        for name, values in _read_cfg_file(path).items():
            merged.setdefault(name, {}).update(values)
            for key in values:
                written[(name, key)] = Origin(path, name)

    # Expansion order as in luigi: %(key)s first (own section, then [DEFAULT]), then ${ENV}.
    percent = configparser.BasicInterpolation()
    key_parser = _CaseKeepingParser()  # only consulted for its (case-keeping) key transform
    result = ConfigSections()
    for name, own in merged.items():
        if name == default and not own:
            continue
        lookup = collections.ChainMap(own, merged[default])
        section = result.setdefault(name, {})
        for key, raw in lookup.items():
            result.origins[(name, key)] = written.get((name, key)) or written[(default, key)]
            try:
                section[key] = _expand_env(percent.before_get(key_parser, name, key, raw, lookup), env)
            except configparser.InterpolationError as err:
                section[key] = raw
                result.deferred[(name, key)] = _interpolation_problem(err)
            except _BadValue as bad:
                section[key] = raw
                result.deferred[(name, key)] = str(bad)
    return result


def _resolve_toml(paths: list[str]) -> ConfigSections:
    # luigi's TOML reader merges key by key, does no interpolation and has no [DEFAULT].
    result = ConfigSections()
    for path in paths:
        for name, table in _read_toml_file(path).items():
            result.setdefault(name, {}).update(table)
            for key in table:
                result.origins[(name, key)] = Origin(path, name)
    return result


def _overlay(base: ConfigSections, top: ConfigSections) -> None:
    for name, values in top.items():
        base.setdefault(name, {}).update(values)
        for key in values:
            base.origins[(name, key)] = top.origins[(name, key)]
            base.deferred.pop((name, key), None)
    base.deferred.update(top.deferred)


def config_files(env: Mapping[str, str], cwd: str, system_dir: str = SYSTEM_DIR) -> list[tuple[str, str]]:
    """The existing files to read as ``(path, "cfg" | "toml")``, in luigi's order.

    LUIGI_CONFIG_PARSER picks the default files; LUIGI_CONFIG_PATH comes last and is parsed
    by its extension (luigi would ignore it when that differs from LUIGI_CONFIG_PARSER).
    """
    parser = env.get("LUIGI_CONFIG_PARSER") or "cfg"
    if parser not in _PARSER_KINDS:
        known = ", ".join(_PARSER_KINDS)
        problem = f"expected one of {known}, got {parser!r}"
        raise ConfigError(f"luigid: config error in LUIGI_CONFIG_PARSER: {problem}")
    kind = _PARSER_KINDS[parser]
    names = CFG_FILES if kind == "cfg" else TOML_FILES
    found = []
    for name in names:
        path = os.path.join(cwd, name.format(system=system_dir))
        if os.path.isfile(path):
            found.append((path, kind))
    explicit = env.get("LUIGI_CONFIG_PATH")
    if explicit:
        path = os.path.join(cwd, explicit)
        if not os.path.isfile(path):
            state = "is not a file" if os.path.exists(path) else "does not exist"
            raise ConfigError(f"luigid: config error in LUIGI_CONFIG_PATH: {path} {state}")
        extension = os.path.splitext(path)[1][1:]
        found.append((path, _PARSER_KINDS.get(extension, kind)))
    return found


def read_sections(files: list[tuple[str, str]], env: Mapping[str, str]) -> ConfigSections:
    """Read ``config_files()`` output: runs of one syntax merge together, later runs override."""
    result = ConfigSections()
    start = 0
    while start < len(files):
        kind = files[start][1]
        end = start
        while end < len(files) and files[end][1] == kind:
            end += 1
        paths = [path for path, _ in files[start:end]]
        _overlay(result, _resolve_cfg(paths, env) if kind == "cfg" else _resolve_toml(paths))
        start = end
    return result


# ---------------------------------------------------------------------------------------
# Typed records.

R = TypeVar("R")

_TYPE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "float": _as_float,
    "int": _as_int,
    "bool": _as_bool,
    "str": _as_str,
    "str | None": _as_optional_str,
}


def _parsers_for(record: type, **special: Callable[[Any], Any]) -> dict[str, Callable[[Any], Any]]:
    """One parser per field of ``record``: by its annotation, unless given in ``special``."""
    return {f.name: special.get(f.name) or _TYPE_PARSERS[str(f.type)] for f in dataclasses.fields(record)}


_SCHEDULER_PARSERS = _parsers_for(
    SchedulerConfig,
    metrics_collector=_as_choice(METRICS_COLLECTORS),
    state_snapshot_interval=_as_non_negative_float,  # 0 turns snapshots off
    slow_request_seconds=_as_non_negative_float,
)
_CORS_PARSERS = _parsers_for(CorsConfig, allowed_origins=_as_origins)


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
        found = _lookup(sections, section, name)
        if found is None:
            continue
        spelling, raw = found
        try:
            values[name] = parse(raw)
        except _BadValue as bad:
            raise config_error(sections, section, spelling, str(bad)) from None
        where[name] = _location(sections, section, spelling)
    for key, raw in (overrides or {}).items():
        name = key.replace("-", "_")
        if name not in parsers:
            raise ConfigError(f"luigid: config error in {source} [{section}] {key}: unknown key")
        where[name] = f"{source} [{section}] {name}"
        try:
            values[name] = parsers[name](raw)
        except _BadValue as bad:
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
