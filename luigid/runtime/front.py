"""An HTTP front process (``[server] http_processes``): Tornado's HTTP work off the scheduler's core.

A fresh interpreter started by the scheduler process (``luigid.runtime.fronts``), never a
fork of its heap. It accepts on the listening sockets the scheduler process bound (inherited
descriptors), and runs for ``/api/<method>`` everything ``luigid.web.api.RpcHandler`` does
before the call: access check, CORS, body limits, JSON and argument validation; a plain call
takes a lean path that does the same without a RequestHandler (``luigid.runtime.lean``). The
validated call crosses the channel (``luigid.runtime.channel``) as its method and JSON text;
status and body come back. Every other request (UI, static files, ``/metrics``, history) is
forwarded whole and answered by the scheduler process's own application. A front holds no
scheduler state: it can be killed and restarted at any time.

It ignores the shutdown signals (the scheduler process stops it with a ``STOP`` frame, after
letting its requests finish) and exits at once when the scheduler process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import tornado.httputil
from tornado.routing import AnyMatches, PathMatches, Rule, RuleRouter

from luigid.config import LuigidConfig
from luigid.core.rpc import RpcSpec
from luigid.runtime import channel as ch
from luigid.runtime.accept import Listener
from luigid.runtime.channel import Channel
from luigid.runtime.lean import LeanRoute, LeanRouter
from luigid.runtime.limits import ServerLimits
from luigid.web.api import RpcHandler
from luigid.web.app import front_app
from luigid.web.errors import JSON_TYPE, ApiError
from luigid.web.validation import MAX_HEADER_SIZE, request_limits_from

#: as the single process (luigid.runtime.server): bodies up to this size are read
MAX_BODY_SIZE = 100 * 1024 * 1024
#: how long requests in flight get to finish after STOP
DRAIN_SECONDS = 5.0
STATS_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class FrontSettings:
    """What the scheduler process hands a front in its first frame."""

    config: LuigidConfig
    #: the listening sockets' descriptors (inherited under the same numbers)
    sockets: tuple[int, ...]
    limits: ServerLimits
    slow_request_seconds: float
    #: whether the metrics collector wants each RPC's duration and status
    observe: bool
    #: effective level of the loggers a front writes to, by name ("" is the root)
    levels: dict[str, int] = field(default_factory=dict)


class Link:
    """The front's end of the channel: numbered requests waiting for their replies."""

    def __init__(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.hello: asyncio.Future[FrontSettings] = loop.create_future()
        self.stop = asyncio.Event()
        self.waiting: dict[int, Any] = {}
        self._next = 0
        self.channel = Channel(sock, self._frame, self._lost)

    def register(self, target: Any) -> int:
        self._next = (self._next + 1) & 0xFFFFFFFF or 1
        self.waiting[self._next] = target
        return self._next

    def observe(self, method: str, seconds: float, status: int) -> None:
        self.channel.send(ch.OBSERVE, 0, f"{method}\t{seconds!r}\t{status}".encode())

    def _frame(self, kind: int, ident: int, payload: bytes) -> None:
        target = self.waiting.get(ident)
        if target is not None:
            target.on_frame(kind, payload)
        elif kind == ch.HELLO:
            self.hello.set_result(pickle.loads(payload))
        elif kind == ch.STOP:
            self.stop.set()

    def _lost(self) -> None:
        # the scheduler process is gone (or closed us): nothing here can be answered any more
        os._exit(0)


class FrontRpcHandler(RpcHandler):
    """``RpcHandler`` whose validated call runs in the scheduler process."""

    link: Link
    _reply: asyncio.Future[None]
    _ident = 0
    _streaming = False

    def initialize(self, link: Link | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        assert link is not None
        self.link = link

    async def run(self, spec: RpcSpec, arguments: dict[str, Any]) -> None:
        self._reply = asyncio.get_running_loop().create_future()
        self._ident = self.link.register(self)
        self.link.channel.send(ch.CALL, self._ident, spec.name.encode() + b"\n" + self.data_text.encode())
        try:
            await self._reply
        finally:
            self.link.waiting.pop(self._ident, None)

    def on_frame(self, kind: int, payload: bytes) -> None:
        reply = self._reply
        if reply.done():
            return
        try:
            if kind == ch.OK:
                self.set_header("Content-Type", JSON_TYPE)
                self.finish(payload)
            elif kind == ch.ERROR:
                status, _, message = payload.decode().partition("\t")
                reply.set_exception(ApiError(int(status), message))
                return
            elif kind == ch.PIECE:
                if not self._streaming:
                    self._streaming = True
                    self.set_header("Content-Type", JSON_TYPE)
                if not self.gone:
                    self.write(payload)
                    self.flush()
                return
            elif kind == ch.END:
                if not self._streaming:
                    self.set_header("Content-Type", JSON_TYPE)
                self.finish(payload)
            else:
                return
        except Exception as exc:  # a client gone mid-write: the handler ends as single-process does
            reply.set_exception(exc)
            return
        reply.set_result(None)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._streaming and self._ident in self.link.waiting:
            self.link.channel.send(ch.CANCEL, self._ident)


class ForwardedRequest(tornado.httputil.HTTPMessageDelegate):
    """A request that is not ``/api/``: read whole, answered by the scheduler process."""

    def __init__(self, link: Link, connection: Any) -> None:
        self.link = link
        self.connection = connection
        self.ident = 0
        self._start: Any = None
        self._headers: Any = None
        self._body: list[bytes] = []

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> None:
        self._start = start_line
        self._headers = headers

    def data_received(self, chunk: bytes) -> None:
        self._body.append(chunk)

    def finish(self) -> None:
        # the remote address as X-Real-Ip/X-Forwarded-For made it (xheaders), read before
        # Dispatch undoes that at the end of this call
        context = getattr(self.connection, "context", None)
        start = self._start
        request = (
            start.method,
            start.path,
            start.version,
            list(self._headers.get_all()),
            b"".join(self._body),
            getattr(context, "remote_ip", None),
            getattr(context, "protocol", "http"),
        )
        self._body = []
        self.ident = self.link.register(self)
        self.link.channel.send(ch.FORWARD, self.ident, pickle.dumps(request))

    def on_connection_close(self) -> None:
        if self.ident and self.link.waiting.pop(self.ident, None) is not None:
            self.link.channel.send(ch.FORWARD_GONE, self.ident)

    def on_frame(self, kind: int, payload: bytes) -> None:
        connection = self.connection
        if kind == ch.HEAD:
            code, reason, pairs = pickle.loads(payload)
            headers = tornado.httputil.HTTPHeaders()
            for name, value in pairs:
                headers.add(name, value)
            connection.write_headers(tornado.httputil.ResponseStartLine("HTTP/1.1", code, reason), headers)
        elif kind == ch.BODY:
            connection.write(payload)
        elif kind == ch.DONE:
            self.link.waiting.pop(self.ident, None)
            connection.finish()


class Forwarder(tornado.httputil.HTTPServerConnectionDelegate):
    def __init__(self, link: Link) -> None:
        self.link = link

    def start_request(self, server_conn: object, request_conn: Any) -> tornado.httputil.HTTPMessageDelegate:
        return ForwardedRequest(self.link, request_conn)


class ToScheduler(logging.Handler):
    """Every record goes to the scheduler process, which logs it where its own records go."""

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self.link.channel.send(ch.LOG, 0, pickle.dumps((record.name, record.levelno, message)))
        except Exception:
            self.handleError(record)


def _log_to(link: Link, levels: dict[str, int]) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(ToScheduler(link))
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)


async def serve(sock: socket.socket) -> None:
    link = Link(sock)
    settings = await link.hello
    _log_to(link, settings.levels)
    observe = link.observe if settings.observe else None
    api = front_app(settings.config, FrontRpcHandler, link=link, observe=observe)
    api.settings["slow_request_seconds"] = settings.slow_request_seconds
    router = RuleRouter([Rule(PathMatches(r"/api/.*"), api), Rule(AnyMatches(), Forwarder(link))])
    limits = request_limits_from(settings.config.sections)
    # the plain calls take the lean path; the rest goes to the router (luigid.runtime.lean)
    lean = LeanRouter(LeanRoute(api, link, settings.config.cors, limits, observe), router)
    # the descriptor limit the scheduler process raised is inherited
    http = Listener(
        lean,
        max_body_size=MAX_BODY_SIZE,
        max_buffer_size=MAX_BODY_SIZE,
        xheaders=False,  # done per request by luigid.runtime.lean.Dispatch
        max_header_size=MAX_HEADER_SIZE,
        idle_connection_timeout=settings.limits.idle_connection_timeout,
    )
    http.add_sockets([socket.socket(fileno=fd) for fd in settings.sockets])
    reported = (-1, -1)
    while not link.stop.is_set():
        now = (http.open_connections, http.acceptor.refused)
        if now != reported:
            link.channel.send(ch.STATS, 0, f"{now[0]}\t{now[1]}".encode())
            reported = now
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(link.stop.wait(), STATS_SECONDS)
    # stop accepting, let what is in flight finish (the scheduler keeps answering meanwhile)
    http.stop()
    deadline = time.monotonic() + DRAIN_SECONDS
    while (api.settings["in_flight"].count or link.waiting) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await http.close_all_connections()
    await link.channel.drained(1.0)


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL when the scheduler process dies, even before the channel is read."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def main(argv: list[str]) -> int:
    fd, parent = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # the scheduler process decides when fronts stop
    asyncio.run(serve(socket.socket(fileno=fd)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
