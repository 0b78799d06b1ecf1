"""The scheduler process's side of its HTTP front processes (``[server] http_processes`` > 1).

``Fronts`` starts the fronts (``luigid.runtime.front``, fresh interpreters given the listening
sockets and one end of a socketpair each), runs what they hand over, restarts one that dies
and stops them at shutdown. A call runs through ``luigid.web.api.start_call``, the same code
the single-process handler runs, so refusals, errors, the durability wait and the reply's
bytes are the same. A forwarded request (anything but ``/api/``) goes through this process's
own Tornado application on a ``ForwardedConnection``, so its answer is the single process's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import tornado.httputil
import tornado.web

import luigid
from luigid.core.rpc import RPC_METHODS, Fragments, loads
from luigid.core.throttled_log import ThrottledWarning
from luigid.runtime import channel as ch
from luigid.runtime.channel import Channel
from luigid.runtime.front import FrontSettings
from luigid.web.api import REPLY_TAIL, Call, start_call, write_pieces
from luigid.web.errors import ApiError

logger = logging.getLogger("luigi.server")
ERRORS = logging.getLogger("tornado.application")

#: a front that dies sooner than this after its start is restarted only after RESTART_PAUSE
STEADY_SECONDS = 10.0
RESTART_PAUSE = 1.0
#: a streamed reply waits while this much of it is still queued for its front
STREAM_BACKLOG = 4 * 1024 * 1024
#: loggers whose level a front copies (the rest inherit the root's)
COPIED_LOGGERS = ("", "tornado.access", "tornado.application", "tornado.general", "luigi.server")


def _package_path() -> str:
    """Where ``luigid`` was imported from, so a front imports the same code."""
    return os.path.dirname(os.path.dirname(os.path.abspath(luigid.__file__)))


class _Context:
    """What ``HTTPServerRequest`` reads from its connection: the client's address, as the front saw it."""

    __slots__ = ("protocol", "remote_ip")

    def __init__(self, remote_ip: str | None, protocol: str) -> None:
        self.remote_ip = remote_ip
        self.protocol = protocol


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


class ForwardedConnection(tornado.httputil.HTTPConnection):
    """A request a front forwarded, seen by this process's application as a connection:
    what the application writes goes back to the front as frames."""

    def __init__(self, front: Front, ident: int, context: _Context) -> None:
        self.front = front
        self.ident = ident
        self.context = context
        self._close_callback: Callable[[], None] | None = None

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def write_headers(
        self, start_line: Any, headers: tornado.httputil.HTTPHeaders, chunk: bytes | None = None
    ) -> Any:
        head = (start_line.code, start_line.reason, list(headers.get_all()))
        self.front.channel.send(ch.HEAD, self.ident, pickle.dumps(head))
        if chunk:
            self.front.channel.send(ch.BODY, self.ident, chunk)
        return _done()

    def write(self, chunk: bytes) -> Any:
        if chunk:
            self.front.channel.send(ch.BODY, self.ident, chunk)
        return _done()

    def finish(self) -> None:
        self.front.forwarded.pop(self.ident, None)
        self.front.channel.send(ch.DONE, self.ident)

    def gone(self) -> None:
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()


class _Stream:
    """A streamed reply on its way to a front (``write_pieces``' sink): one PIECE per flush."""

    def __init__(self, front: Front, ident: int) -> None:
        self.front = front
        self.ident = ident
        self.gone = False
        self._parts: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self._parts.append(chunk)

    def flush(self) -> None:
        if self._parts:
            self.front.channel.send(ch.PIECE, self.ident, b"".join(self._parts))
            self._parts = []

    def end(self) -> None:
        self.front.channel.send(ch.END, self.ident, b"".join(self._parts) + REPLY_TAIL)

    async def pace(self) -> None:
        # a front slower than the pieces are made: hold the rest instead of queueing it all
        while self.front.channel.backlog > STREAM_BACKLOG and not self.gone:
            await asyncio.sleep(0.005)


class Front:
    """One front process and the scheduler process's end of its channel."""

    def __init__(self, pool: Fronts, slot: int, proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.pool = pool
        self.slot = slot
        self.proc = proc
        self.started = time.monotonic()
        self.streams: dict[int, _Stream] = {}
        self.forwarded: dict[int, ForwardedConnection] = {}
        self.tasks: set[asyncio.Future[None]] = set()
        self.open_connections = 0
        self.refused = 0
        self.channel = Channel(sock, self._frame, self._lost)

    def _frame(self, kind: int, ident: int, payload: bytes) -> None:
        if kind == ch.CALL:
            self._call(ident, payload)
        elif kind == ch.OBSERVE:
            method, seconds, status = payload.decode().split("\t")
            if self.pool.observe is not None:
                self.pool.observe(method, float(seconds), int(status))
        elif kind == ch.FORWARD:
            self._forward(ident, payload)
        elif kind == ch.CANCEL:
            stream = self.streams.get(ident)
            if stream is not None:
                stream.gone = True
        elif kind == ch.FORWARD_GONE:
            connection = self.forwarded.pop(ident, None)
            if connection is not None:
                connection.gone()
        elif kind == ch.LOG:
            self._log(payload)
        elif kind == ch.STATS:
            opened, refused = payload.split(b"\t")
            self.open_connections, self.refused = int(opened), int(refused)

    # -- calls --

    def _call(self, ident: int, payload: bytes) -> None:
        method, _, text = payload.partition(b"\n")
        name = method.decode()
        try:
            spec = RPC_METHODS[name]  # the front routed and validated it
            call = start_call(self.pool.scheduler, spec, loads(text.decode()))
            if call.synced is not None:
                self._spawn_task(self._settle(ident, call))
            else:
                self._reply(ident, call)
        except Exception as exc:
            self._failed(ident, name, exc)

    def _spawn_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self.tasks.discard)

    async def _settle(self, ident: int, call: Call) -> None:
        try:
            await call.settled()
            self._reply(ident, call)
        except Exception as exc:
            self._failed(ident, call.spec.name, exc)

    def _reply(self, ident: int, call: Call) -> None:
        reply = call.reply()
        if isinstance(reply, Fragments):
            stream = self.streams[ident] = _Stream(self, ident)
            self._spawn_task(self._stream(stream, reply))
        else:
            self.channel.send(ch.OK, ident, reply)

    async def _stream(self, stream: _Stream, fragments: Fragments) -> None:
        try:
            await write_pieces(fragments, stream, pace=stream.pace)
        except Exception as exc:
            self._failed(stream.ident, "a streamed reply", exc)
            return
        finally:
            self.streams.pop(stream.ident, None)
        stream.end()

    def _failed(self, ident: int, what: str, exc: Exception) -> None:
        if isinstance(exc, ApiError):
            status, message = exc.status_code, exc.message
        else:
            # as tornado does for an uncaught exception: logged here, a bare 500 for the client
            ERRORS.error("Uncaught exception in %s", what, exc_info=exc)
            status, message = 500, "Internal Server Error"
        self.channel.send(ch.ERROR, ident, f"{status}\t{message}".encode())

    # -- forwarded requests --

    def _forward(self, ident: int, payload: bytes) -> None:
        method, uri, version, pairs, body, remote_ip, protocol = pickle.loads(payload)
        connection = self.forwarded[ident] = ForwardedConnection(self, ident, _Context(remote_ip, protocol))
        headers = tornado.httputil.HTTPHeaders()
        for name, value in pairs:
            headers.add(name, value)
        delegate = self.pool.application.start_request(None, connection)
        delegate.headers_received(tornado.httputil.RequestStartLine(method, uri, version), headers)
        if body:
            delegate.data_received(body)
        delegate.finish()

    # -- the rest --

    def _log(self, payload: bytes) -> None:
        name, level, message = pickle.loads(payload)
        target = logging.getLogger(name)
        if target.isEnabledFor(level):
            record = target.makeRecord(name, level, "(front)", 0, message, (), None)
            record.process = self.proc.pid  # the line names the front that wrote it
            target.handle(record)

    def _lost(self) -> None:
        for stream in self.streams.values():
            stream.gone = True
        for connection in list(self.forwarded.values()):
            connection.gone()
        self.forwarded.clear()
        self.open_connections = 0
        self.pool.lost(self)


class Fronts:
    """The front processes: started after the sockets are bound and the state loaded."""

    def __init__(
        self,
        count: int,
        sockets: list[socket.socket],
        scheduler: Any,
        application: tornado.web.Application,
        settings: FrontSettings,
        observe: Callable[[str, float, int], None] | None,
    ) -> None:
        self.count = count
        self.sockets = sockets
        self.scheduler = scheduler
        self.application = application
        self.settings = settings
        self.observe = observe
        self.running: dict[int, Front] = {}
        self.stopping = False
        self.restarts = 0
        self._warning = ThrottledWarning(logger)
        self._payload = pickle.dumps(settings)

    @staticmethod
    def settings_for(
        config: Any, sockets: list[socket.socket], limits: Any, slow: float, observe: bool
    ) -> FrontSettings:
        levels = {name: logging.getLogger(name or None).getEffectiveLevel() for name in COPIED_LOGGERS}
        return FrontSettings(
            config=config,
            sockets=tuple(s.fileno() for s in sockets),
            limits=limits,
            slow_request_seconds=slow,
            observe=observe,
            levels=levels,
        )

    @property
    def open_connections(self) -> int:
        return sum(front.open_connections for front in self.running.values())

    @property
    def refused(self) -> int:
        return sum(front.refused for front in self.running.values())

    @property
    def pids(self) -> list[int]:
        return [front.proc.pid for front in self.running.values()]

    def start(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)

    def _spawn(self, slot: int) -> None:
        if self.stopping:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_path(), env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "luigid.runtime.front", str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(), *self.settings.sockets),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            ours.close()
            self._warning.warn("Could not start an HTTP front process: %s; trying again", exc.strerror or exc)
            asyncio.get_running_loop().call_later(RESTART_PAUSE, self._spawn, slot)
            return
        finally:
            theirs.close()
        front = self.running[slot] = Front(self, slot, proc, ours)
        front.channel.send(ch.HELLO, 0, self._payload)

    def lost(self, front: Front) -> None:
        """A front's channel closed: it exited (or is exiting). Restart it unless stopping."""
        if self.running.get(front.slot) is front:
            del self.running[front.slot]
        self._reap(front)

    def _reap(self, front: Front) -> None:
        code = front.proc.poll()
        if code is None:
            asyncio.get_running_loop().call_later(0.05, self._reap, front)
            return
        if self.stopping:
            return
        self.restarts += 1
        lived = time.monotonic() - front.started
        pause = 0.0 if lived >= STEADY_SECONDS else RESTART_PAUSE
        self._warning.warn(
            "HTTP front process %d exited (status %d) after %.0f s; starting another%s",
            front.proc.pid,
            code,
            lived,
            f" in {pause:.0f} s" if pause else "",
        )
        asyncio.get_running_loop().call_later(pause, self._spawn, front.slot)

    async def stop(self, drain_seconds: float, forced: Callable[[], bool]) -> None:
        """STOP every front (they stop accepting and let their requests finish, which this
        process keeps answering), wait for them to exit, kill any that outlive the drain."""
        self.stopping = True
        fronts = list(self.running.values())
        for front in fronts:
            front.channel.send(ch.STOP, 0)
        deadline = time.monotonic() + drain_seconds + 2.0
        while any(f.proc.poll() is None for f in fronts) and time.monotonic() < deadline and not forced():
            await asyncio.sleep(0.02)
        for front in fronts:
            if front.proc.poll() is None:
                front.proc.kill()
                front.proc.wait()
            front.channel.close()
