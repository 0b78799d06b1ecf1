"""Who may make a request, and the headers every response carries.

``secure_routes`` gives every handler of the application the same two things, so no route
can forget them:

- security headers on every response (CSP without inline script, frame-ancestors 'none',
  nosniff), whether or not authentication is on;
- with ``[auth] enabled``: credentials (HTTP Basic as luigi workers send them, or a bearer
  token), a role check, POST-only for calls that change state, and a cross-site check
  for those calls when they come from a browser.

A handler says what a request needs through an ``access()`` method returning ``Access``
(or None for an open request); without one, reading needs the viewer role.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import tornado.web
from tornado.ioloop import IOLoop

from luigid.auth.config import AuthConfig
from luigid.auth.passwords import DUMMY_HASH, token_digest, verify_password
from luigid.auth.users import User, UsersFile, UsersFileError
from luigid.config import ConfigError, CorsConfig
from luigid.core.rpc import ROLES

logger = logging.getLogger("luigi.server")

#: Scripts only from luigid itself (the UI has no inline script); the history pages keep
#: an inline <style>, so inline styles are allowed; no framing, no plugins, no <base>.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: How often (at most) the users file is checked for changes.
USERS_FILE_CHECK_SECONDS = 1.0
#: Successful password checks remembered (per process, keyed with a random secret).
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Access:
    """What a request needs: the least role, and whether it changes state."""

    role: str
    mutating: bool
    #: what is being asked for, for messages ("mark_as_done", "GET /history")
    what: str


@dataclass(frozen=True)
class Identity:
    name: str
    role: str


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def role_allows(held: str, needed: str) -> bool:
    return ROLES.index(held) >= ROLES.index(needed)


def access_of(handler: tornado.web.RequestHandler) -> Access | None:
    if handler.request.method == "OPTIONS":
        return None  # CORS preflights never carry credentials
    declared = getattr(handler, "access", None)
    if declared is not None:
        access: Access | None = declared()
        return access
    method = handler.request.method or "GET"
    return Access("viewer", method not in SAFE_METHODS, f"{method} {handler.request.path}")


class Guard:
    """Authentication and authorisation for one application, from ``[auth]`` and ``[cors]``."""

    def __init__(self, config: AuthConfig | None = None, cors: CorsConfig | None = None) -> None:
        self.config = config or AuthConfig()
        self.cors = cors or CorsConfig()
        self.users: UsersFile | None = None
        if self.config.enabled:
            assert self.config.users_file is not None  # checked by auth_config_from
            try:
                self.users = UsersFile(self.config.users_file)
            except UsersFileError as exc:
                raise ConfigError(f"luigid: config error in [auth] users_file: {exc}") from None
            if not self.users.users.by_name:
                logger.warning(
                    "Authentication is on but %s lists no users: every request but HEAD / will be refused "
                    "(add one with `luigid user add NAME --role admin`)",
                    self.config.users_file,
                )
        self._secret = secrets.token_bytes(32)
        self._verified: collections.OrderedDict[bytes, Identity] = collections.OrderedDict()
        self._next_check = 0.0
        self._reported_problem: str | None = None
        self.challenge = f'Basic realm="{self.config.realm}", charset="UTF-8"'

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    # ------------------------------------------------------------------ headers

    def set_headers(self, handler: tornado.web.RequestHandler) -> None:
        for name, value in SECURITY_HEADERS.items():
            handler.set_header(name, value)

    # -------------------------------------------------------------- admission

    async def admit(self, handler: tornado.web.RequestHandler) -> None:
        """Let the request through, or answer it (401/403/405) and finish it."""
        access = access_of(handler)
        if access is None:
            return
        try:
            identity = await self._check(handler, access)
        except Refusal as refusal:
            self._refuse(handler, refusal)
            return
        handler.current_user = identity

    async def _check(self, handler: tornado.web.RequestHandler, access: Access) -> Identity:
        request = handler.request
        if access.mutating and request.method in SAFE_METHODS:
            raise Refusal(405, f"{access.what} changes scheduler state: send it as POST", {"Allow": "POST"})
        identity = await self.identify(request.headers.get("Authorization"))
        if identity is None:
            raise Refusal(
                401,
                "authentication required: give a user name and password, or a bearer token",
                {"WWW-Authenticate": self.challenge},
            )
        if not role_allows(identity.role, access.role):
            raise Refusal(
                403, f"user {identity.name!r} has role {identity.role}; {access.what} needs {access.role}"
            )
        if access.mutating:
            problem = self.cross_site_problem(request)
            if problem is not None:
                raise Refusal(403, f"{access.what} refused: {problem}")
        return identity

    def _refuse(self, handler: tornado.web.RequestHandler, refusal: Refusal) -> None:
        if refusal.status == 401:
            logger.debug("Refused %s %s: %s", handler.request.method, handler.request.path, refusal.message)
        else:
            logger.info("Refused %s %s: %s", handler.request.method, handler.request.path, refusal.message)
        from luigid.web.handlers import reason_phrase  # (handlers imports this module)

        # the reason phrase carries the message too: luigi's client shows only that
        handler.set_status(refusal.status, reason_phrase(refusal.message))
        for name, value in refusal.headers.items():
            handler.set_header(name, value)
        handler.set_header("Content-Type", "application/json; charset=UTF-8")
        handler.set_header("Cache-Control", "no-store")
        handler.finish(json.dumps({"error": refusal.message}))

    # ---------------------------------------------------------- credentials

    def _users(self) -> UsersFile:
        assert self.users is not None
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + USERS_FILE_CHECK_SECONDS
            if self.users.refresh():
                logger.info("Reloaded users from %s", self.users.path)
                self._verified.clear()
            problem = self.users.problem
            if problem is not None and problem != self._reported_problem:
                logger.warning("Kept the previous users: %s", problem)
            self._reported_problem = problem
        return self.users

    async def identify(self, authorization: str | None) -> Identity | None:
        """The user an Authorization header proves, or None."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer":
            return self._by_token(value)
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            name, sep, password = decoded.partition(":")
            if not sep:
                return None
            return await self._by_password(name, password)
        return None

    def _by_token(self, token: str) -> Identity | None:
        if not token:
            return None
        digest = token_digest(token)
        user = self._users().users.by_token.get(digest)
        if user is None or not any(hmac.compare_digest(digest, d) for d in user.token_digests):
            return None
        return Identity(user.name, user.role)

    async def _by_password(self, name: str, password: str) -> Identity | None:
        users = self._users().users
        key = hmac.new(
            self._secret, f"{name}\0{password}".encode("utf-8", "surrogatepass"), hashlib.sha256
        ).digest()
        known = self._verified.get(key)
        if known is not None:
            self._verified.move_to_end(key)
            return known
        user: User | None = users.by_name.get(name)
        hashes = user.password_hashes if user is not None and user.password_hashes else [DUMMY_HASH]
        # scrypt is slow on purpose: keep it off the event loop
        ok = await IOLoop.current().run_in_executor(None, _any_matches, password, hashes)
        if not ok or user is None:
            return None
        # the file may have been re-read meanwhile: the password must still be listed
        current = self._users().users.by_name.get(name)
        if current is None or not set(hashes) & set(current.password_hashes):
            return None
        user = current
        identity = Identity(user.name, user.role)
        self._verified[key] = identity
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    # ------------------------------------------------------------ cross-site

    def cross_site_problem(self, request: Any) -> str | None:
        """Why a state-changing request looks forged by another site, or None.

        Browsers attach remembered Basic credentials to any request to luigid, including
        a form another site submits. Such requests carry ``Origin``/``Sec-Fetch-Site``;
        luigi workers and scripts send neither and are not affected. A browser request
        must carry ``X-Requested-With`` (which no other site can add without a CORS
        preflight luigid would refuse) and come from luigid's own origin or one [cors]
        allows."""
        headers = request.headers
        origin = headers.get("Origin")
        site = headers.get("Sec-Fetch-Site")
        if origin is None and site is None:
            return None
        if not headers.get("X-Requested-With"):
            return "a browser request that changes state must carry an X-Requested-With header"
        if origin is not None:
            if not (self._same_host(origin, request) or self._cors_allows(origin)):
                return f"cross-site request from origin {origin[:200]!r}"
        elif site == "cross-site":
            return "cross-site request"
        return None

    @staticmethod
    def _same_host(origin: str, request: Any) -> bool:
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            return False
        if not netloc:
            return False
        hosts = {request.host.lower()}
        forwarded = request.headers.get("X-Forwarded-Host")
        if forwarded:
            hosts.add(forwarded.split(",")[0].strip().lower())
        return netloc in hosts

    def _cors_allows(self, origin: str) -> bool:
        cors = self.cors
        if not cors.enabled:
            return False
        if origin == "null":
            return cors.allow_null_origin
        return cors.allow_any_origin or origin in cors.allowed_origins


def _any_matches(password: str, hashes: list[str]) -> bool:
    matched = False
    for stored in hashes:
        matched |= verify_password(password, stored)
    return matched


# ---------------------------------------------------------------------- routes


def guarded(cls: type[tornado.web.RequestHandler], guard: Guard) -> type[tornado.web.RequestHandler]:
    """``cls`` with the guard's headers on every response and its check before the handler runs."""

    def set_default_headers(self: tornado.web.RequestHandler) -> None:
        cls.set_default_headers(self)
        guard.set_headers(self)

    def prepare(self: tornado.web.RequestHandler) -> Awaitable[None] | None:
        first = cls.prepare(self)
        if not guard.enabled:
            return first
        return _then_admit(self, first, guard)

    return type(
        cls.__name__,
        (cls,),
        {
            "set_default_headers": set_default_headers,
            "prepare": prepare,
            "__module__": cls.__module__,
            "__doc__": cls.__doc__,
        },
    )


async def _then_admit(
    handler: tornado.web.RequestHandler, first: Awaitable[None] | None, guard: Guard
) -> None:
    if first is not None:
        await first
    if not handler._finished:
        await guard.admit(handler)


def secure_routes(routes: list[Any], guard: Guard) -> list[Any]:
    """The same routing table with every handler class guarded."""
    out = []
    for route in routes:
        if isinstance(route, tuple) and len(route) >= 2 and isinstance(route[1], type):
            out.append((route[0], guarded(route[1], guard), *route[2:]))
        else:
            out.append(route)
    return out
