"""The one base of every handler (API, UI, static files, history pages, metrics, not found).

``BaseHandler`` owns what every route shares, so no route can forget it:

- security headers on every response (authentication on or off);
- the request counted in ``InFlight`` from ``prepare`` to ``on_finish``, so shutdown lets it end;
- CORS, for the routes given a ``CorsConfig`` (the others are same-origin only);
- the access check: the application's ``Gate`` (``luigid.auth.Guard``) is asked with what the
  handler's ``access()`` says the request needs, after the route's own ``precheck``;
- error answers: ``write_error`` is the one place they are written.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import tornado
import tornado.httputil
import tornado.web

from luigid.config import CorsConfig
from luigid.web.access import SAFE_METHODS, Access, Gate, Refusal
from luigid.web.errors import JSON_TYPE, error_body, error_message, reason_phrase

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


_SERVER = f"TornadoServer/{tornado.version}"
#: the Date header's text, made once a second: [second, text]
_date: list[Any] = [0, ""]


def fresh_headers() -> tornado.httputil.HTTPHeaders:
    """The headers a response starts with: tornado's own (as ``RequestHandler.clear`` sets
    them, in that order) and the security headers. A front's lean path
    (``luigid.runtime.lean``) starts its responses from these, as a handler does."""
    now = int(time.time())
    if now != _date[0]:
        _date[:] = [now, tornado.httputil.format_timestamp(now)]
    headers = tornado.httputil.HTTPHeaders()
    headers["Server"] = _SERVER
    headers["Content-Type"] = "text/html; charset=UTF-8"
    headers["Date"] = _date[1]
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    return headers


def allowed_origin(cors: CorsConfig | None, origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin a request from ``origin`` gets (None: no CORS headers)."""
    if cors is None or not origin or not cors.allows(origin):
        return None
    if origin == "null":
        return "null"
    return "*" if cors.allow_any_origin else origin


def cors_headers(cors: CorsConfig | None, origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers every answer to a request from ``origin`` carries (errors excepted)."""
    allowed = allowed_origin(cors, origin)
    if allowed is None:
        return []
    if allowed in ("*", "null"):
        return [("Access-Control-Allow-Origin", allowed)]
    return [("Access-Control-Allow-Origin", allowed), ("Vary", "Origin")]


def refusal_headers(refusal: Refusal) -> list[tuple[str, str]]:
    """The headers of the answer to a refused request, besides the ones it already has."""
    return [*refusal.headers.items(), ("Content-Type", JSON_TYPE), ("Cache-Control", "no-store")]


class InFlight:
    """Requests started and not yet finished, so shutdown can let them complete."""

    def __init__(self) -> None:
        self.count = 0


class BaseHandler(tornado.web.RequestHandler):
    #: None: the route takes no part in CORS (no headers, OPTIONS is 405 as in tornado)
    cors: CorsConfig | None = None
    _counted = False

    def _initialize(self, cors: CorsConfig | None = None, **kwargs: Any) -> None:
        self.cors = cors
        super().initialize(**kwargs)  # the rest: StaticFileHandler's path

    # typed loosely, as tornado's own: each route's handler takes its own arguments
    initialize: Callable[..., None] = _initialize

    def set_default_headers(self) -> None:
        # also run by clear(), so error answers keep them. Written straight into tornado's
        # header map: set_header would check each constant's characters again on every
        # request (four of a small reply's ten headers)
        headers = self._headers
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value

    # -- the request's way in --

    def prepare(self) -> Awaitable[None] | None:
        in_flight: InFlight | None = self.settings.get("in_flight")
        if in_flight is not None:
            self._counted = True
            in_flight.count += 1
        for name, value in cors_headers(self.cors, self.request.headers.get("Origin")):
            self.set_header(name, value)
        self.precheck()
        gate: Gate | None = self.settings.get("guard")
        if gate is None or not gate.enabled or self._finished:
            return None  # no coroutine: the common path stays synchronous
        return self._admit(gate)

    def precheck(self) -> None:
        """The route's own checks that need no credentials (a 413, a 404): they come first."""

    def access(self) -> Access | None:
        """What this request needs (None: open to anyone). By default pages are for viewers."""
        method = self.request.method or "GET"
        return Access("viewer", method not in SAFE_METHODS, f"{method} {self.request.path}")

    async def _admit(self, gate: Gate) -> None:
        if self.request.method == "OPTIONS":
            return  # CORS preflights never carry credentials
        access = self.access()
        if access is None:
            return
        try:
            self.current_user = await gate.admit(self.request, access)
        except Refusal as refusal:
            self._refuse(refusal)

    def _refuse(self, refusal: Refusal) -> None:
        # written here rather than raised: the answer keeps the CORS headers set above
        # the reason phrase carries the message too: luigi's client shows only that
        self.set_status(refusal.status, reason_phrase(refusal.message))
        for name, value in refusal_headers(refusal):
            self.set_header(name, value)
        self.finish(error_body(refusal.message))

    def on_finish(self) -> None:
        if self._counted:
            self.settings["in_flight"].count -= 1

    # -- CORS, following luigi's [cors] section --

    def _allowed_origin(self) -> str | None:
        return allowed_origin(self.cors, self.request.headers.get("Origin"))

    def options(self, *args: Any) -> None:
        cors = self.cors
        if cors is None:
            raise tornado.web.HTTPError(405)
        if self._allowed_origin() is not None:
            self.set_header("Access-Control-Max-Age", str(cors.max_age))
            self.set_header("Access-Control-Allow-Methods", cors.allowed_methods)
            self.set_header("Access-Control-Allow-Headers", cors.allowed_headers)
            if cors.allow_credentials:
                self.set_header("Access-Control-Allow-Credentials", "true")
            if cors.exposed_headers:
                self.set_header("Access-Control-Expose-Headers", cors.exposed_headers)
        self.set_status(204)
        self.finish()

    # -- errors: a message for the client, never a traceback --

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.write_error_body(status_code, self.error_message(status_code, exc))

    def error_message(self, status_code: int, exc: BaseException | None) -> str:
        return error_message(status_code, exc, self._reason)

    def write_error_body(self, status_code: int, message: str) -> None:
        """JSON ``{"error": message}``; a route whose clients are browsers may answer a page."""
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(error_body(message))

    def write_tornado_error_page(self, status_code: int) -> None:
        """Tornado's own small HTML error page, which static files and /metrics answer."""
        tornado.web.RequestHandler.write_error(self, status_code)
