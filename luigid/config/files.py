"""Finding and reading luigi's config files, in luigi's order, with its expansion rules.

cfg files are read as luigi's parser reads them (keys keep their case, ``%(key)s`` then
``${ENV}`` expansion, ``[DEFAULT]`` inherited by every section); TOML files merge key by key
with no expansion. Every value remembers the file and section it came from (``Origin``), so a
bad one can be reported as one line naming them.
"""

from __future__ import annotations

import collections
import configparser
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from luigid.config.values import BadValue, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: where luigi looks, in reading order; relative names are taken from the working directory
CFG_FILES = ("{system}/client.cfg", "{system}/luigi.cfg", "client.cfg", "luigi.cfg")
TOML_FILES = ("{system}/luigi.toml", "luigi.toml")
SYSTEM_DIR = "/etc/luigi"

#: LUIGI_CONFIG_PARSER values (and LUIGI_CONFIG_PATH extensions) luigi knows, and the syntax each means
_PARSER_KINDS = {"cfg": "cfg", "conf": "cfg", "ini": "cfg", "toml": "toml"}

_ENV_REF = re.compile(r"\$\{([^}]+)\}")


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
            raise BadValue(f"environment variable {name} is not set (used as ${{{name}}})")
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
            except BadValue as bad:
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
