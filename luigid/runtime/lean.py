"""A front process's lean path: the plain ``/api/<method>`` call served without a RequestHandler.

Most of a front's time went to Tornado's ``RequestHandler`` machinery around each small call
(docs/performance.md, "HTTP front processes"). ``Dispatch`` looks at each request's method, path
and headers before its body is read; a plain call (``LeanRoute.takes``) is served by a
``LeanCall``, an ``HTTPMessageDelegate`` on Tornado's own HTTP/1 connection; everything else
goes on to the front's router as before (the Application's ``FrontRpcHandler`` for the rest of
``/api/``, the scheduler process for the other paths).

A lean call answers exactly as the handler does (status, reason, headers, body, access log,
metrics, in-flight count): every decision is one of the shared functions of ``luigid.web``
(access, CORS, body allowance, body and argument reading, JSON, binding, error bodies, the
log line), and the response goes through the application's own output transforms (gzip).
What is left here is the order of those steps, which follows ``RpcHandler``'s:
access check before the body, validation after it, then the call over the channel.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import tornado.httputil
import tornado.web

from luigid.config import CorsConfig
from luigid.core.rpc import RPC_METHODS, RpcSpec
from luigid.runtime import channel as ch
from luigid.web.access import Gate, Refusal
from luigid.web.api import access_for, argument_text, bind, body_allowance, parse_json, read_body
from luigid.web.app import log_access
from luigid.web.base import InFlight, cors_headers, fresh_headers, refusal_headers
from luigid.web.errors import JSON_TYPE, ApiError, error_body, error_message, reason_phrase
from luigid.web.validation import RequestLimits


class CallLink(Protocol):
    """What a lean call needs of the front's end of the channel (``luigid.runtime.front.Link``):
    a number for its call, the table its reply is routed by, and the channel to send on."""

    waiting: dict[int, Any]
    channel: ch.Channel

    def register(self, target: Any) -> int: ...


ERRORS = logging.getLogger("tornado.application")
GENERAL = logging.getLogger("tornado.general")

#: the request methods luigi's clients send (HEAD and OPTIONS take the handler's path)
LEAN_METHODS = ("POST", "GET")
FORM_TYPE = "application/x-www-form-urlencoded"
#: what a proxy in front of luigid adds (tornado's xheaders): the client's address and scheme
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "X-Scheme", "X-Forwarded-Proto")
#: headers that make a request unusual: 100-continue, chunked or encoded bodies
UNUSUAL_HEADERS = ("Expect", "Transfer-Encoding", "Content-Encoding")


class LeanRoute:
    """What the lean path shares between calls: the front application's settings and parts."""

    def __init__(
        self,
        api: tornado.web.Application,
        link: CallLink,
        cors: CorsConfig | None,
        limits: RequestLimits,
        observe: Any,
    ) -> None:
        self.link = link
        self.cors = cors
        self.limit = limits.max_request_body
        self.observe = observe
        self.settings: dict[str, Any] = api.settings
        self.gate: Gate | None = api.settings.get("guard")
        self.in_flight: InFlight = api.settings["in_flight"]
        self.transforms: list[Any] = list(api.transforms)

    def takes(self, start_line: tornado.httputil.RequestStartLine, headers: Any) -> RpcSpec | None:
        return plain_call(start_line, headers, self.limit)


def plain_call(start_line: tornado.httputil.RequestStartLine, headers: Any, limit: int) -> RpcSpec | None:
    """The method of a plain call (a known method by POST or GET, a form body within ``limit``
    or none, nothing unusual), or None: the request takes the handler's path."""
    if start_line.method not in LEAN_METHODS:
        return None
    path = start_line.path.partition("?")[0]
    if not path.startswith("/api/"):
        return None
    spec = RPC_METHODS.get(path[5:])
    if spec is None:
        return None  # the 404 (and any escaped name) is the handler's
    for name in UNUSUAL_HEADERS:
        if name in headers:
            return None
    length = headers.get("Content-Length")
    if length is not None:
        if not (length.isascii() and length.isdigit()) or int(length) > limit:
            return None  # a bad length, several of them, or a 413 to answer
        if int(length) and not headers.get("Content-Type", "").startswith(FORM_TYPE):
            return None
    return spec


class Dispatch(tornado.httputil.HTTPMessageDelegate):
    """One request: to a ``LeanCall`` when plain, else to the front's router.

    It also does what tornado's ``xheaders`` do (the server runs without them): a request that
    came through a proxy is seen with the client's address and scheme until it is over. A
    request without those headers is left alone, which is what tornado's own rewrite comes to
    then, without its cost (an address check per request)."""

    def __init__(self, route: LeanRoute, fallback: Any, server_conn: object, request_conn: Any) -> None:
        self.route = route
        self.fallback = fallback
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.delegate: tornado.httputil.HTTPMessageDelegate | None = None
        self.proxied = False

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Any:
        context = getattr(self.request_conn, "context", None)
        if context is not None and any(name in headers for name in PROXY_HEADERS):
            self.proxied = True
            context._apply_xheaders(headers)  # as tornado's HTTPServer(xheaders=True) does
        spec = self.route.takes(start_line, headers)
        if spec is not None:
            self.delegate = LeanCall(self.route, spec, self.server_conn, self.request_conn)
        else:
            self.delegate = self.fallback.start_request(self.server_conn, self.request_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()
        self._unproxy()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()
        self._unproxy()

    def _unproxy(self) -> None:
        # the next request on the connection may not come through the proxy
        if self.proxied:
            self.proxied = False
            self.request_conn.context._unapply_xheaders()


class LeanRouter(tornado.httputil.HTTPServerConnectionDelegate):
    """The front's connection delegate: each request to a ``Dispatch``."""

    def __init__(self, route: LeanRoute, fallback: tornado.httputil.HTTPServerConnectionDelegate) -> None:
        self.route = route
        self.fallback = fallback

    def start_request(self, server_conn: object, request_conn: Any) -> tornado.httputil.HTTPMessageDelegate:
        return Dispatch(self.route, self.fallback, server_conn, request_conn)


class LeanCall(tornado.httputil.HTTPMessageDelegate):
    """A plain call: checked, sent to the scheduler process, its reply written as a handler would.

    Invariants: the request is counted in flight from its head until its answer is finished
    or it is abandoned (released once); the scheduler's reply, when one was asked for, is
    awaited even after the client hung up (a streamed one is cancelled)."""

    def __init__(self, route: LeanRoute, spec: RpcSpec, server_conn: object, request_conn: Any) -> None:
        self.route = route
        self.spec = spec
        self.server_conn = server_conn
        self.connection = request_conn
        self.request: tornado.httputil.HTTPServerRequest
        self.headers: tornado.httputil.HTTPHeaders
        self.transforms: list[Any] = []
        self.status = 200
        self.reason = "OK"
        self.failed = 0  # the status metrics count, when it is not the one sent
        self.chunks: list[bytes] = []
        self.ident = 0
        self.started = 0.0
        self.counted = False
        self.answered = False  # the response is finished (or given up: the client is gone)
        self.headers_written = False
        self.streaming = False
        self.gone = False

    # -- the request's way in --

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Any:
        route = self.route
        # as tornado's router: a bad Host header raises HTTPInputError here, answered 400 by tornado
        self.request = tornado.httputil.HTTPServerRequest(
            connection=self.connection,
            start_line=start_line,
            headers=headers,
            server_connection=self.server_conn,
        )
        route.in_flight.count += 1
        self.counted = True
        self.headers = fresh_headers()
        for name, value in cors_headers(route.cors, headers.get("Origin")):
            self.headers[name] = value
        length = headers.get("Content-Length")
        self.connection.set_max_body_size(body_allowance(route.limit, int(length) if length else None))
        self.connection.set_close_callback(self.on_connection_close)
        gate = route.gate
        if gate is None or not gate.enabled:
            return None  # no coroutine: the common path stays synchronous
        return self._admit(gate)

    async def _admit(self, gate: Gate) -> None:
        try:
            await gate.admit(self.request, access_for(self.spec.name))
        except Refusal as refusal:
            # answered before the body, as the handler's prepare does (tornado then closes)
            self.status, self.reason = refusal.status, reason_phrase(refusal.message)
            for name, value in refusal_headers(refusal):
                self.headers[name] = value
            self._finish(error_body(refusal.message).encode())
        except Exception as exc:
            self._crash(exc)

    def data_received(self, chunk: bytes) -> None:
        if not self.answered:
            self.chunks.append(chunk)

    def finish(self) -> None:
        if self.answered:
            return
        self.started = time.perf_counter()
        spec = self.spec
        try:
            read_body(self.request, self.chunks)
            self.chunks = []
            text = argument_text(self.request.arguments, "data")
            bind(spec, parse_json(text))
        except ApiError as exc:
            self._fail(exc)
            return
        except Exception as exc:
            self._crash(exc)
            return
        link = self.route.link
        self.ident = link.register(self)
        link.channel.send(ch.CALL, self.ident, spec.name.encode() + b"\n" + text.encode())

    def on_connection_close(self) -> None:
        if self.gone:
            return
        self.gone = True
        link = self.route.link
        if self.ident and self.ident in link.waiting:
            if self.streaming:
                link.channel.send(ch.CANCEL, self.ident)
            return  # released when the reply comes
        if not self.answered:
            self.answered = True
            self._release()

    # -- the reply, frame by frame --

    def on_frame(self, kind: int, payload: bytes) -> None:
        if self.answered:
            return
        if kind == ch.OK or kind == ch.END:
            self.route.link.waiting.pop(self.ident, None)
            self.headers["Content-Type"] = JSON_TYPE
            self._finish(payload)
        elif kind == ch.PIECE:
            if not self.streaming:
                self.streaming = True
                self.headers["Content-Type"] = JSON_TYPE
            if not self.gone:
                self._write(payload, finishing=False)
        elif kind == ch.ERROR:
            self.route.link.waiting.pop(self.ident, None)
            status, _, message = payload.decode().partition("\t")
            self._fail(ApiError(int(status), message))

    # -- the response, as RequestHandler's finish, flush and send_error write it --

    def _fail(self, exc: BaseException) -> None:
        status = exc.status_code if isinstance(exc, tornado.web.HTTPError) else 500
        if self.headers_written:
            GENERAL.error("Cannot send error response after headers written")
            self.failed = status  # counted as failed, though the client saw a 200 begin
            self._finish(b"")
            return
        # an error answer starts afresh, without the CORS headers (as send_error's clear())
        self.headers = fresh_headers()
        self.status = status
        self.reason = getattr(exc, "reason", None) or tornado.httputil.responses.get(status, "Unknown")
        self.headers["Content-Type"] = JSON_TYPE
        self._finish(error_body(error_message(status, exc, self.reason)).encode())

    def _crash(self, exc: Exception) -> None:
        ERRORS.error("Uncaught exception %s %s", self.request.method, self.request.uri, exc_info=exc)
        self._fail(exc)

    def _write(self, chunk: bytes, finishing: bool) -> None:
        try:
            if not self.headers_written:
                self.headers_written = True
                status, headers = self.status, self.headers
                for transform in self.transforms or self._start_transforms():
                    status, headers, chunk = transform.transform_first_chunk(
                        status, headers, chunk, finishing
                    )
                start = tornado.httputil.ResponseStartLine("", status, self.reason)
                self.connection.write_headers(start, headers, chunk)
            else:
                for transform in self.transforms:
                    chunk = transform.transform_chunk(chunk, finishing)
                self.connection.write(chunk)
        except Exception:  # a client gone mid-write: the answer ends all the same
            self.gone = True

    def _start_transforms(self) -> list[Any]:
        self.transforms = [transform(self.request) for transform in self.route.transforms]
        return self.transforms

    def _finish(self, chunk: bytes) -> None:
        self.answered = True
        try:
            if not self.gone:
                if not self.headers_written:
                    self.headers["Content-Length"] = str(len(chunk))
                self.connection.set_close_callback(None)
                self._write(chunk, finishing=True)
                if not self.gone:
                    self.connection.finish()
        except Exception:  # the connection went meanwhile: the request is over all the same
            self.gone = True
        finally:
            log_access(self.request, self.status, self.route.settings)
            self._release()
            observe = self.route.observe
            if observe is not None and self.started:
                observe(self.spec.name, time.perf_counter() - self.started, self.failed or self.status)

    def _release(self) -> None:
        if self.counted:
            self.counted = False
            self.route.in_flight.count -= 1
