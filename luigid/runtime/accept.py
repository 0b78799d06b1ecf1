"""Accepting connections when descriptors run out: pause, never spin.

Tornado's accept handler lets EMFILE escape. The listening socket stays readable, so the loop
calls the handler again at once and logs a traceback each time: one core at 100 % and hundreds
of thousands of log lines a second until a descriptor is freed (issue 16). Here a failed
accept takes the listening sockets off the loop for a pause that doubles while the failures go
on; the connections already open are served meanwhile, pending ones wait in the kernel's
backlog, and one warning a minute counts the failures.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import tornado.httpserver
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from luigid.core.throttled_log import ThrottledWarning

logger = logging.getLogger("luigi.server")

#: resources whose lack makes accept() fail until something else closes
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: errors of the connection being accepted, not of the listener: skip it, as for EAGAIN (accept(2))
CONNECTION_ERRORS = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EOPNOTSUPP,
        errno.EPERM,  # refused by a firewall rule
    }
)
FIRST_PAUSE = 0.01
#: short enough that serving resumes within a second of descriptors coming back
LONGEST_PAUSE = 1.0
#: accepts per wake-up, as Tornado: other callbacks must not starve behind a flood of connects
ACCEPTS_PER_WAKEUP = 128


class Acceptor:
    """Accepts on listening sockets and hands each connection to ``on_connection``."""

    def __init__(self, on_connection: Callable[[socket.socket, Any], None]) -> None:
        self._on_connection = on_connection
        self._sockets: list[socket.socket] = []
        self._loop: IOLoop | None = None
        self._listening = False
        self._resume: object | None = None
        self._pause = FIRST_PAUSE
        self._warning = ThrottledWarning(logger)
        #: accept() calls that failed for want of a resource (each followed by a pause)
        self.refused = 0

    @property
    def paused(self) -> bool:
        return self._resume is not None

    def add(self, sock: socket.socket) -> None:
        self._loop = IOLoop.current()
        self._sockets.append(sock)
        if not self.paused:
            self._loop.add_handler(sock, self._ready, IOLoop.READ)
            self._listening = True

    def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        self._stop_listening()
        if self._resume is not None and self._loop is not None:
            self._loop.remove_timeout(self._resume)
        self._resume = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def _stop_listening(self) -> None:
        if self._listening and self._loop is not None:
            for sock in self._sockets:
                self._loop.remove_handler(sock)
        self._listening = False

    def _ready(self, sock: socket.socket, events: int) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            if not self._listening:
                return  # paused or closed by a callback of this very wake-up
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in CONNECTION_ERRORS:
                    continue
                self._refused(exc)
                return
            self._pause = FIRST_PAUSE
            self._on_connection(connection, address)

    def _refused(self, exc: OSError) -> None:
        if exc.errno in OUT_OF_RESOURCES:
            self.refused += 1
        pause = self._pause
        self._pause = min(pause * 2, LONGEST_PAUSE)
        self._warning.warn(
            "Cannot accept new connections: %s; trying again in pauses of up to %.0f s while open "
            "connections are served (%d failed accepts so far)",
            exc.strerror or exc,
            LONGEST_PAUSE,
            self.refused,
        )
        self._stop_listening()
        assert self._loop is not None
        self._resume = self._loop.call_later(pause, self._listen_again)

    def _listen_again(self) -> None:
        self._resume = None
        if self._sockets and self._loop is not None:
            for sock in self._sockets:
                self._loop.add_handler(sock, self._ready, IOLoop.READ)
            self._listening = True


class Listener(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server, accepting through ``Acceptor`` and counting its open connections."""

    acceptor: Acceptor
    #: connections being served (HTTP/1.1 keep-alive ones included)
    open_connections = 0

    def add_sockets(self, sockets: Any) -> None:
        if not hasattr(self, "acceptor"):
            # _handle_connection makes the IOStream and calls handle_stream (Tornado 6's TCPServer)
            self.acceptor = Acceptor(self._handle_connection)
        for sock in sockets:
            self.acceptor.add(sock)

    def stop(self) -> None:
        if hasattr(self, "acceptor"):
            self.acceptor.close()
        super().stop()

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        self.open_connections += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)
