"""Authentication, roles and browser safety (see docs/security.md).

Off by default: existing setups keep working. ``[auth] enabled = true`` plus a users file
(written with ``luigid user add``) turns it on for every route but the ``HEAD /`` health check.
"""

from __future__ import annotations

from luigid.auth.config import AuthConfig, auth_config_from
from luigid.auth.guard import Guard

#: Addresses meaning "every interface".
_ALL_INTERFACES = (None, "", "0.0.0.0", "::", "[::]", "*")


def open_access_warning(guard: Guard, address: str | None, unix_socket: str | None) -> str | None:
    """The one warning to log at start when anyone on the network may use luigid."""
    if guard.enabled or unix_socket is not None or address not in _ALL_INTERFACES:
        return None
    return (
        "Authentication is off and luigid listens on all interfaces: anyone who can reach this port "
        "can change the scheduler's state. Listen on 127.0.0.1 (--address) or turn on [auth] "
        "(see docs/security.md)"
    )


__all__ = ["AuthConfig", "Guard", "auth_config_from", "open_access_warning"]
