"""What a request needs to be let through, and the answer when it may not be.

The HTTP layer asks; ``luigid.auth`` answers. This module is what the two share, so that
the access check is a plain object the base handler calls (``Gate``), and ``luigid.auth``
never imports a handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import tornado.httputil

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Access:
    """What a request needs: the least role, and whether it changes state."""

    role: str
    mutating: bool
    #: what is being asked for, for messages ("mark_as_done", "GET /history")
    what: str


class Refusal(Exception):
    """A request that may not go on: its status, message and extra headers (WWW-Authenticate...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Gate(Protocol):
    """The access check every request passes (``luigid.auth.Guard``)."""

    @property
    def enabled(self) -> bool: ...

    async def admit(self, request: tornado.httputil.HTTPServerRequest, access: Access) -> Any:
        """The identity the request proves, or raise ``Refusal``."""
