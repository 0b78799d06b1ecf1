"""Who may make a request: ``Guard``, the access check every request passes when
``[auth] enabled``.

The base handler (``luigid.web.base``) asks ``Guard.admit`` with what a request needs
(``Access``); the guard answers with the user's identity or raises ``Refusal``: credentials
(HTTP Basic as luigi workers send them, or a bearer token), a role check, POST-only for calls
that change state, and a cross-site check for those calls when they come from a browser.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import tornado.httputil
from tornado.ioloop import IOLoop

from luigid.auth.config import AuthConfig
from luigid.auth.passwords import DUMMY_HASH, token_digest, verify_password
from luigid.auth.users import User, UsersFile, UsersFileError
from luigid.config import ConfigError, CorsConfig
from luigid.core.rpc import ROLES
from luigid.web.access import SAFE_METHODS, Access, Refusal

logger = logging.getLogger("luigi.server")

#: How often (at most) the users file is checked for changes.
USERS_FILE_CHECK_SECONDS = 1.0
#: Successful password checks remembered (per process, keyed with a random secret).
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Identity:
    name: str
    role: str


def role_allows(held: str, needed: str) -> bool:
    return ROLES.index(held) >= ROLES.index(needed)


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

    # -------------------------------------------------------------- admission

    async def admit(self, request: tornado.httputil.HTTPServerRequest, access: Access) -> Identity:
        """The user the request proves, allowed ``access``; else raises ``Refusal`` (401/403/405)."""
        try:
            return await self._check(request, access)
        except Refusal as refusal:
            level = logging.DEBUG if refusal.status == 401 else logging.INFO
            logger.log(level, "Refused %s %s: %s", request.method, request.path, refusal.message)
            raise

    async def _check(self, request: tornado.httputil.HTTPServerRequest, access: Access) -> Identity:
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
            if not (self._same_host(origin, request) or self.cors.allows(origin)):
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


def _any_matches(password: str, hashes: list[str]) -> bool:
    matched = False
    for stored in hashes:
        matched |= verify_password(password, stored)
    return matched
