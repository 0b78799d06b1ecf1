"""The local channel between the scheduler process and its HTTP front processes.

One Unix socketpair per front, carrying length-prefixed frames ``[length][id][kind]payload``.
Many calls are in flight on it at once (``id`` pairs a reply with its call), and both ends
batch: every frame sent during one turn of the event loop leaves in one ``send``, and one
``recv`` reads as many frames as have arrived. Both ends are trusted (the same program,
started by the scheduler process); what crosses is already validated HTTP input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable

logger = logging.getLogger("luigi.server")

#: payload length, id, kind
HEADER = struct.Struct("!IIB")
READ_SIZE = 256 * 1024

# front -> scheduler
CALL = 1  # an RPC that passed validation: b"<method>\n<data as JSON text>"
CANCEL = 2  # the client of a streamed reply hung up
FORWARD = 3  # a whole HTTP request that is not /api/ (pickled ``Forwarded``)
FORWARD_GONE = 4  # that request's client hung up
OBSERVE = 5  # one RPC's metrics: b"<method>\t<seconds>\t<status>"
LOG = 6  # a log record (pickled: logger name, level, message)
STATS = 7  # b"<open connections>\t<failed accepts>"
# scheduler -> front
HELLO = 10  # the front's settings (pickled ``FrontSettings``)
OK = 11  # a whole reply body
ERROR = 12  # b"<status>\t<message>"
PIECE = 13  # part of a streamed reply: write and flush
END = 14  # the rest of a streamed reply: finish
HEAD = 15  # a forwarded request's response head (pickled: code, reason, header pairs)
BODY = 16  # part of its body
DONE = 17  # its end
STOP = 18  # stop accepting, let what is in flight finish, exit


class Channel:
    """Frames over a connected non-blocking socket, driven by the running asyncio loop."""

    def __init__(
        self,
        sock: socket.socket,
        on_frame: Callable[[int, int, bytes], None],
        on_close: Callable[[], None],
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._fd = sock.fileno()
        self._loop = asyncio.get_running_loop()
        self._on_frame = on_frame
        self._on_close = on_close
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._flush_due = False
        self._writer = False
        self.closed = False
        self._loop.add_reader(self._fd, self._readable)

    def send(self, kind: int, ident: int, payload: bytes = b"") -> None:
        if self.closed:
            return
        self._outbox += HEADER.pack(len(payload), ident, kind)
        self._outbox += payload
        if not self._flush_due and not self._writer:
            self._flush_due = True
            self._loop.call_soon(self._flush)

    @property
    def backlog(self) -> int:
        """Bytes sent that the other end has not taken yet."""
        return len(self._outbox)

    def _flush(self) -> None:
        self._flush_due = False
        if self.closed or not self._outbox:
            return
        try:
            sent = self.sock.send(self._outbox)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        del self._outbox[:sent]
        if self._outbox and not self._writer:
            self._writer = True
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self._outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self._outbox[:sent]
        if not self._outbox:
            self._writer = False
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        inbox = self._inbox
        inbox += data
        size = len(inbox)
        at = 0
        unpack = HEADER.unpack_from
        on_frame = self._on_frame
        while size - at >= 9:
            length, ident, kind = unpack(inbox, at)
            end = at + 9 + length
            if end > size:
                break
            try:
                on_frame(kind, ident, bytes(inbox[at + 9 : end]))
            except Exception:  # one frame's failure must not stall or replay the others
                logger.exception("Could not handle a frame of kind %d from the other process", kind)
            at = end
            if self.closed:
                return
        del inbox[:at]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        if self._writer:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._fd)
        self.sock.close()
        self._on_close()

    async def drained(self, timeout: float) -> None:
        """Wait (up to ``timeout``) until everything sent has left."""
        deadline = self._loop.time() + timeout
        while (self._outbox or self._flush_due) and not self.closed and self._loop.time() < deadline:
            await asyncio.sleep(0.01)
