"""Typed reads of one subsystem's options out of ``LuigidConfig.sections``.

Values arrive as strings from ``.cfg`` files or as native types from TOML; luigi accepts an
option spelled with dashes or underscores, and some options also under an older
``[section] key`` name, so a lookup walks a list of (section, key) candidates. Every bad value
becomes a one-line ``ConfigError`` naming the section and key it came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from luigid.config import ConfigError

#: (section, key) pairs tried in order; the first one present wins
Candidates = Sequence[tuple[str, str]]

_MISSING = object()


class SectionReader:
    def __init__(self, sections: Mapping[str, Mapping[str, Any]] | None) -> None:
        self._sections = sections or {}

    def _find(self, candidates: Candidates) -> tuple[str, str, Any]:
        for section, key in candidates:
            options = self._sections.get(section)
            if not options:
                continue
            for spelling in dict.fromkeys((key, key.replace("_", "-"), key.replace("-", "_"))):
                if spelling in options:
                    return section, spelling, options[spelling]
        return "", "", _MISSING

    def raw(self, candidates: Candidates, default: Any = None) -> Any:
        return self._find(candidates)[2] if self.has(candidates) else default

    def has(self, candidates: Candidates) -> bool:
        return self._find(candidates)[2] is not _MISSING

    def string(self, candidates: Candidates, default: str | None) -> str | None:
        _, _, value = self._find(candidates)
        return default if value is _MISSING else str(value)

    def boolean(self, candidates: Candidates, default: bool) -> bool:
        section, key, value = self._find(candidates)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        raise ConfigError(f"[{section}] {key}: expected true or false, got {value!r}")

    def integer(self, candidates: Candidates, default: int) -> int:
        section, key, value = self._find(candidates)
        if value is _MISSING:
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"[{section}] {key}: expected an integer, got {value!r}") from None

    def number(self, candidates: Candidates, default: float) -> float:
        section, key, value = self._find(candidates)
        if value is _MISSING:
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(str(value).strip())
        except ValueError:
            raise ConfigError(f"[{section}] {key}: expected a number, got {value!r}") from None

    def choice(self, candidates: Candidates, default: str, choices: Iterable[str]) -> str:
        section, key, value = self._find(candidates)
        if value is _MISSING:
            return default
        allowed = tuple(choices)
        text = str(value).strip()
        if text not in allowed:
            raise ConfigError(f"[{section}] {key}: expected one of {', '.join(allowed)}, got {value!r}")
        return text

    def string_list(self, candidates: Candidates, default: Sequence[str] = ()) -> tuple[str, ...]:
        """A list option, written as a JSON list in .cfg files (as luigi's ListParameter reads it)."""
        section, key, value = self._find(candidates)
        if value is _MISSING:
            return tuple(default)
        parsed = value
        if isinstance(value, str):
            try:
                parsed = json.loads(value) if value.strip() else []
            except ValueError:
                raise ConfigError(
                    f'[{section}] {key}: expected a JSON list such as ["a", "b"], got {value!r}'
                ) from None
        if parsed is None:
            return ()
        if not isinstance(parsed, (list, tuple)):
            raise ConfigError(f'[{section}] {key}: expected a JSON list such as ["a", "b"], got {value!r}')
        return tuple(str(item) for item in parsed)
