"""The ``[ha]`` section: setting ``db_connection`` turns high availability on."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from luigid.config import config_error, get_float, get_str

DEFAULT_LEASE_TIMEOUT = 10.0
#: below this a busy machine's scheduling jitter alone could lapse the lease
MIN_LEASE_TIMEOUT = 2.0


@dataclass(frozen=True)
class HaConfig:
    db_connection: str
    advertise_url: str
    node_name: str
    lease_timeout: float = DEFAULT_LEASE_TIMEOUT


def ha_config_from(
    sections: Mapping[str, Any], address: str | None, port: int, unix_socket: str | None = None
) -> HaConfig | None:
    """The ``[ha]`` settings, or None when HA is off. Raises ``ConfigError`` (one line)."""
    db_connection = get_str(sections, "ha", "db_connection", None)
    if db_connection is None or not db_connection.strip():
        return None
    if not db_connection.startswith(("postgresql://", "postgres://")):
        raise config_error(
            sections, "ha", "db_connection", "must be a PostgreSQL URL such as postgresql://user@host:5432/db"
        )
    if unix_socket is not None:
        raise config_error(
            sections,
            "ha",
            "db_connection",
            "HA needs a TCP port (other nodes forward to it), not --unix-socket",
        )
    host = address if address and address not in ("0.0.0.0", "::") else socket.gethostname()
    advertise_url = get_str(sections, "ha", "advertise_url", None) or f"http://{host}:{port}"
    if not advertise_url.startswith(("http://", "https://")):
        raise config_error(sections, "ha", "advertise_url", "must be an http:// or https:// URL")
    node_name = get_str(sections, "ha", "node_name", None) or f"{socket.gethostname()}:{port}"
    lease = get_float(sections, "ha", "lease_timeout", DEFAULT_LEASE_TIMEOUT)
    if lease < MIN_LEASE_TIMEOUT:
        raise config_error(sections, "ha", "lease_timeout", f"must be at least {MIN_LEASE_TIMEOUT:g} seconds")
    return HaConfig(db_connection.strip(), advertise_url.rstrip("/"), node_name, lease)
