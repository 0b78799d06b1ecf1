"""The ``[auth]`` section: off unless ``enabled = true``; then ``users_file`` is required."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from luigid.config import ConfigError, config_error, get_bool, get_str

SECTION = "auth"
KEYS = ("enabled", "users_file", "realm")


@dataclass(frozen=True)
class AuthConfig:
    enabled: bool = False
    users_file: str | None = None
    #: the realm browsers show in their login prompt
    realm: str = "luigid"


def auth_config_from(sections: Mapping[str, Any]) -> AuthConfig:
    """The typed ``[auth]`` record; ConfigError (one line, naming file and key) when bad."""
    for key in sections.get(SECTION, {}):
        if key.replace("-", "_") not in KEYS and _own_key(sections, key):
            raise config_error(sections, SECTION, key, f"unknown key (known: {', '.join(KEYS)})")
    enabled = get_bool(sections, SECTION, "enabled", False)
    users_file = get_str(sections, SECTION, "users_file", None) or None
    realm = get_str(sections, SECTION, "realm", "luigid")
    if any(c in realm for c in '"\\\r\n') or not realm.isprintable():
        raise config_error(sections, SECTION, "realm", "must be plain text without quotes or backslashes")
    if enabled and users_file is None:
        where = getattr(sections, "origins", {}).get((SECTION, "enabled"))
        place = f"{where.path} [auth] enabled" if where else "[auth] enabled"
        raise ConfigError(f"luigid: config error in {place}: authentication needs [auth] users_file")
    return AuthConfig(enabled=enabled, users_file=users_file, realm=realm)


def _own_key(sections: Mapping[str, Any], key: str) -> bool:
    """False for keys [auth] only inherits from [DEFAULT]."""
    origin = getattr(sections, "origins", {}).get((SECTION, key))
    return origin is None or origin.section == SECTION
