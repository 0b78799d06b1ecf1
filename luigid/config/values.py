"""Values from config files: parsing them, and errors that name where they were written.

Each ``as_*`` parser takes a cfg string, a TOML value or a Python value and returns the typed
value or raises ``BadValue``; the ``get_*`` helpers look a key up in the sections (under its
underscore or dash spelling, as luigi does) and turn ``BadValue`` into a ``ConfigError``
naming file, section and key. Subsystems parse their own sections with the ``get_*`` helpers.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar


class ConfigError(Exception):
    """A configuration problem, reported to the operator as one line."""

    def __init__(self, message: str) -> None:
        # Values may hold newlines (multi-line cfg values); the operator gets one line.
        super().__init__(" ".join(message.split()))


# ---------------------------------------------------------------------------------------
# Value parsing: each parser takes a cfg string, a TOML value or a Python value.


class BadValue(ValueError):
    """A value that does not parse; the caller adds file, section and key."""


def as_bool(value: Any) -> bool:
    # luigi's BoolParameter accepts exactly true/false, in any case.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadValue(f"expected true or false, got {value!r}")


def as_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise BadValue(f"expected an integer, got {value!r}")


def as_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise BadValue(f"expected a number, got {value!r}") from None
    else:
        raise BadValue(f"expected a number, got {value!r}")
    if math.isnan(number):
        raise BadValue(f"expected a number, got {value!r}")
    return number


def as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a TOML number where text is due: luigi takes it as is
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise BadValue(f"expected text, got {value!r}")


def as_optional_str(value: Any) -> str | None:
    # luigi's OptionalStrParameter: an empty value means "not set".
    if value is None:
        return None
    text = as_str(value)
    return text or None


def as_list(value: Any) -> tuple[Any, ...]:
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
    raise BadValue(f'expected a JSON list such as ["a", "b"], got {value!r}')


def as_str_list(value: Any) -> tuple[str, ...]:
    items = as_list(value)
    for item in items:
        if not isinstance(item, str):
            raise BadValue(f"expected a list of strings, got {value!r}")
    return items


def as_choice(choices: Iterable[str]) -> Callable[[Any], str]:
    allowed = tuple(choices)

    def parse(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise BadValue(f"expected one of {', '.join(allowed)}, got {value!r}")

    return parse


def as_non_negative_float(value: Any) -> float:
    number = as_float(value)
    if number < 0:
        raise BadValue(f"expected a number of 0 or more, got {value!r}")
    return number


def as_non_negative_int(value: Any) -> int:
    number = as_int(value)
    if number < 0:
        raise BadValue(f"expected an integer of 0 or more, got {value!r}")
    return number


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def as_size(value: Any) -> int:
    """Bytes: a number, or one with a KB/MB/GB suffix (powers of 1024)."""
    match = _SIZE.fullmatch(as_str(value).strip())
    if match is None:
        raise BadValue(f"expected a size such as 10485760, 10MB or 512KB, got {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def as_origins(value: Any) -> tuple[str, ...]:
    # luigi drops "*" and "null" here: those are switched on by allow_any/null_origin.
    kept: list[str] = []
    for origin in as_str_list(value):
        if origin not in ("*", "null") and origin not in kept:
            kept.append(origin)
    return tuple(kept)


# ---------------------------------------------------------------------------------------
# Helpers for subsystems: look a key up (underscore or dash spelling) and parse it.

T = TypeVar("T")


def location(sections: Mapping[str, Any], section: str, key: str) -> str:
    """Where ``[section] key`` was written. ``sections`` is a ``ConfigSections`` (which knows
    each value's origin and deferred expansion errors) or, in tests and programs, a plain dict."""
    origins = getattr(sections, "origins", {})
    origin = origins.get((section, key))
    if origin is None:
        return f"[{section}] {key}"
    return f"{origin.path} [{origin.section}] {key}"


def config_error(sections: Mapping[str, Any], section: str, key: str, problem: str) -> ConfigError:
    """A ``ConfigError`` for ``[section] key`` naming the file its value came from."""
    return ConfigError(f"luigid: config error in {location(sections, section, key)}: {problem}")


def lookup(sections: Mapping[str, Any], section: str, key: str) -> tuple[str, Any] | None:
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
    found = lookup(sections, section, key)
    if found is None:
        return default
    spelling, value = found
    try:
        return parse(value)
    except BadValue as bad:
        raise config_error(sections, section, spelling, str(bad)) from None


def get_str(sections: Mapping[str, Any], section: str, key: str, default: T) -> str | T:
    return _get(sections, section, key, default, as_str)


def get_bool(sections: Mapping[str, Any], section: str, key: str, default: T) -> bool | T:
    return _get(sections, section, key, default, as_bool)


def get_int(sections: Mapping[str, Any], section: str, key: str, default: T) -> int | T:
    return _get(sections, section, key, default, as_int)


def get_float(sections: Mapping[str, Any], section: str, key: str, default: T) -> float | T:
    return _get(sections, section, key, default, as_float)


def get_size(sections: Mapping[str, Any], section: str, key: str, default: T) -> int | T:
    return _get(sections, section, key, default, as_size)


def get_list(sections: Mapping[str, Any], section: str, key: str, default: T) -> tuple[Any, ...] | T:
    """A list value: JSON text in a cfg file (as luigi's ListParameter), an array in TOML."""
    return _get(sections, section, key, default, as_list)


def get_choice(
    sections: Mapping[str, Any], section: str, key: str, choices: Iterable[str], default: T
) -> str | T:
    return _get(sections, section, key, default, as_choice(choices))
