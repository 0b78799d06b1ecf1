"""Request handlers. ``BaseHandler`` owns what every endpoint shares: JSON error bodies,
CORS, and the parsing of ``data=<json>``; the others only say what their endpoint does.

Bad input never reaches the scheduler: ``RpcHandler`` reads the body itself (so an
oversized one is answered 413 with a JSON error), and checks JSON, arguments and their
types (``luigid.web.validation``) first. Each handler's ``access()`` tells ``luigid.auth``
what a request needs when authentication is on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import tornado.httputil
import tornado.web

from luigid.auth.guard import Access
from luigid.config import CorsConfig
from luigid.core import gcpause
from luigid.core.rpc import RPC_METHODS, Fragments, RpcError, RpcSpec, dumps
from luigid.web.validation import Invalid, RequestLimits, check_arguments, json_depth_exceeds

logger = logging.getLogger("luigi.server")

JSON_TYPE = "application/json; charset=UTF-8"


#: Longest error message sent back (they may quote what the client sent).
MAX_ERROR_LENGTH = 2000
#: Characters allowed in an HTTP reason phrase (and no "<": tornado refuses it).
_UNSAFE_REASON = re.compile(r"[^\x20-\x3b\x3d-\x7e]+")
#: An oversized body up to this many times the limit is read and dropped, so that the client,
#: still sending, gets to read the 413; anything bigger is answered at once and cut off.
DISCARD_FACTOR = 8


def reason_phrase(message: str) -> str:
    """The error as an HTTP reason phrase: luigi's client shows it in its RPCError."""
    return _UNSAFE_REASON.sub(" ", message)[:200].strip() or "Bad Request"


class ApiError(tornado.web.HTTPError):
    """An error the client caused; its message goes back to the client as ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        if len(message) > MAX_ERROR_LENGTH:
            message = message[: MAX_ERROR_LENGTH - 3] + "..."
        super().__init__(status, reason=reason_phrase(message))
        self.message = message


class InFlight:
    """Requests started and not yet finished, so shutdown can let them complete."""

    def __init__(self) -> None:
        self.count = 0


class BaseHandler(tornado.web.RequestHandler):
    cors: CorsConfig

    def initialize(self, cors: CorsConfig | None = None, **kwargs: Any) -> None:
        self.cors = cors or CorsConfig()

    # -- errors: always a JSON body with a message, never a traceback page --

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            message = exc.message
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message and status_code < 500:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        else:
            message = self._reason
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps({"error": message}))

    def write_json(self, payload: Any) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(dumps(payload))

    # -- CORS, following luigi's [cors] section --

    def _allowed_origin(self) -> str | None:
        origin = self.request.headers.get("Origin")
        if not self.cors.enabled or not origin:
            return None
        if origin == "null":
            return "null" if self.cors.allow_null_origin else None
        if self.cors.allow_any_origin:
            return "*"
        if origin in self.cors.allowed_origins and origin not in ("*", "null"):
            return origin
        return None

    _counted = False

    def on_finish(self) -> None:
        if self._counted:
            self.application.settings["in_flight"].count -= 1

    def prepare(self) -> None:
        self._counted = True
        self.application.settings["in_flight"].count += 1
        allowed = self._allowed_origin()
        if allowed is not None:
            self.set_header("Access-Control-Allow-Origin", allowed)
            if allowed not in ("*", "null"):
                self.set_header("Vary", "Origin")

    def options(self, *args: Any) -> None:
        if self._allowed_origin() is not None:
            cors = self.cors
            self.set_header("Access-Control-Max-Age", str(cors.max_age))
            self.set_header("Access-Control-Allow-Methods", cors.allowed_methods)
            self.set_header("Access-Control-Allow-Headers", cors.allowed_headers)
            if cors.allow_credentials:
                self.set_header("Access-Control-Allow-Credentials", "true")
            if cors.exposed_headers:
                self.set_header("Access-Control-Expose-Headers", cors.exposed_headers)
        self.set_status(204)
        self.finish()

    # -- arguments --

    def json_argument(self, name: str = "data") -> Any:
        try:
            raw = self.get_argument(name, default="{}")
        except tornado.web.HTTPError as exc:
            raise ApiError(400, f"could not read '{name}': {exc.log_message or 'bad encoding'}") from exc
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"'{name}' is not valid JSON: {exc}") from exc
        except RecursionError:
            raise ApiError(400, f"'{name}' is nested too deeply") from None
        if json_depth_exceeds(value):
            raise ApiError(400, f"'{name}' is nested too deeply")
        return value


@tornado.web.stream_request_body
class RpcHandler(BaseHandler):
    """``/api/<method>``: validates the call against the method's signature, then runs it.

    The body is streamed in, so its size is checked against ``[server] max_request_body``
    before it is held in memory.
    """

    def compute_etag(self) -> None:
        # replies change with every call; hashing a 50 MB graph reply would cost ~100 ms
        return None

    def initialize(
        self,
        cors: CorsConfig | None = None,
        scheduler: Any = None,
        observe: Callable[[str, float, int], None] | None = None,
        limits: RequestLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().initialize(cors=cors)
        self.scheduler = scheduler
        self.observe = observe
        self.limits = limits or RequestLimits()
        self._chunks: list[bytes] = []
        self._received = 0
        self._too_large = False

    def access(self) -> Access:
        method = self.path_args[0] if self.path_args else ""
        spec = RPC_METHODS.get(method)
        if spec is None:
            return Access("viewer", False, method[:100])
        return Access(spec.role, spec.mutating, method)

    # -- the body --

    def _too_large_error(self, size: int | None) -> ApiError:
        limit = self.limits.max_request_body
        size_text = f"of {size} bytes " if size is not None else ""
        message = f"request body {size_text}is larger than the limit of {limit} bytes"
        message += " ([server] max_request_body)"
        return ApiError(413, message)

    def prepare(self) -> None:
        super().prepare()
        limit = self.limits.max_request_body
        length = self.request.headers.get("Content-Length", "")
        declared = int(length) if length.isdigit() else None
        connection = self.request.connection
        if connection is not None and hasattr(connection, "set_max_body_size"):
            # tornado's own limit would cut the connection without a reply: stay above it
            most = max(limit, declared) if declared is not None else limit * DISCARD_FACTOR
            connection.set_max_body_size(most)
        if declared is not None and declared > limit:
            self._too_large = True
            expecting = self.request.headers.get("Expect", "").lower() == "100-continue"
            if expecting or declared > limit * DISCARD_FACTOR:
                raise self._too_large_error(declared)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._received += len(chunk)
        if self._received > self.limits.max_request_body:
            self._too_large = True
            self._chunks = []
        elif not self._too_large:
            self._chunks.append(chunk)

    def _read_body(self) -> None:
        if self._too_large:
            raise self._too_large_error(self._received)
        request = self.request
        request.body = b"".join(self._chunks)
        self._chunks = []
        if not request.body:
            return
        try:
            tornado.httputil.parse_body_arguments(
                request.headers.get("Content-Type", ""),
                request.body,
                request.body_arguments,
                request.files,
                request.headers,
            )
        except tornado.httputil.HTTPInputError as exc:
            raise ApiError(400, f"could not read the request body: {exc}") from None
        for name, values in request.body_arguments.items():
            request.arguments.setdefault(name, []).extend(values)

    # -- the call --

    def _bind(self, spec: RpcSpec, arguments: Any) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ApiError(400, f"{spec.name}: 'data' must be a JSON object, got {type(arguments).__name__}")
        missing = spec.required - arguments.keys()
        if missing:
            raise ApiError(400, f"{spec.name}: missing argument(s): {', '.join(sorted(missing))}")
        if not spec.accepts_extra:
            unknown = arguments.keys() - spec.known
            if unknown:
                raise ApiError(400, f"{spec.name}: unknown argument(s): {', '.join(sorted(unknown))}")
        try:
            check_arguments(spec.name, arguments)
        except Invalid as exc:
            raise ApiError(400, f"{spec.name}: {exc}") from None
        return arguments

    async def _call(self, method: str) -> None:
        started = time.perf_counter()
        spec = RPC_METHODS.get(method)
        try:
            if spec is None:
                raise ApiError(404, f"unknown method: {method[:200]!r}")
            self._read_body()
            arguments = self._bind(spec, self.json_argument())
            try:
                result = spec.invoke(self.scheduler, arguments)
            except RpcError as exc:
                raise ApiError(400, f"{spec.name}: {exc}") from exc
            if isinstance(result, Fragments):
                await self._stream_response(result)
            else:
                self.write_json({"response": result})
        finally:
            if self.observe is not None and spec is not None:
                self.observe(method, time.perf_counter() - started, self.get_status())

    async def _stream_response(self, fragments: Fragments) -> None:
        """Send ``{"response": {...}}`` piece by piece, letting other requests run between
        pieces: a 100k-task reply never holds the event loop for more than a piece's worth.
        Each piece is flushed as it comes (chunked), so compressing it (gzip, for browsers)
        is spread out too, the client reads while the next piece is made, and no copy of
        the whole reply is ever joined; a client that hangs up stops the rest being made."""
        self.set_header("Content-Type", JSON_TYPE)
        self.write(b'{"response": {')
        first = True
        with gcpause.paused():
            for piece in fragments:
                if self._client_gone:
                    return
                if piece:
                    # the object's members, without its braces
                    body = piece if isinstance(piece, bytes) else dumps(piece)[1:-1]
                    if body:
                        if not first:
                            self.write(b",")
                        self.write(body)
                        first = False
                        self.flush()  # not awaited: the stream sends it while the next piece is made
                await asyncio.sleep(0)
        self.finish(b"}}")

    _client_gone = False

    def on_connection_close(self) -> None:
        self._client_gone = True
        super().on_connection_close()

    async def get(self, method: str) -> None:
        await self._call(method)

    async def post(self, method: str) -> None:
        await self._call(method)


class RootHandler(BaseHandler):
    """``/``: the UI lives under a relative path (so a URL prefix works); HEAD is a health check."""

    def get(self) -> None:
        self.redirect("static/visualiser/index.html")

    def head(self) -> None:
        self.set_status(204)
        self.finish()

    def access(self) -> Access | None:
        # HEAD / is the health check load balancers and supervisors use: always open
        return None if self.request.method == "HEAD" else Access("viewer", False, "GET /")


class StaticHandler(tornado.web.StaticFileHandler):
    """The UI's files. Browsers revalidate them on every load (cheap: ETag/304), so an
    upgraded luigid is never shown with a stale mix of old and new scripts."""

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return 0

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        super().prepare()
        raise ApiError(404, f"no such path: {self.request.path}")
