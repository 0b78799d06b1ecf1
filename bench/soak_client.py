"""A small asyncio HTTP/1.1 client for the soak: one keep-alive connection per simulated worker.

A real luigi worker holds a ``requests.Session`` (a pooled keep-alive connection); thousands of
those as threads would eat the load generator's CPU, so each simulated worker gets this instead:
raw requests on an asyncio stream, the same form-encoded ``data=<json>`` body luigi posts, and
just enough response parsing (Content-Length or chunked) for the replies tornado sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import urlencode


class CallFailed(Exception):
    """A call that did not come back as HTTP 200 with a JSON ``response`` key."""


class SoakConnection:
    """One persistent connection to the daemon; reconnects lazily after a failure or a close."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def call(self, method: str, args: dict[str, Any], http_method: str = "POST") -> tuple[float, Any]:
        """(seconds, response) of one RPC; raises CallFailed on any transport or protocol failure."""
        data = urlencode({"data": json.dumps(args)}).encode()
        if http_method == "POST":
            head = (
                f"POST /api/{method} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            request = head + data
        else:
            request = (
                f"GET /api/{method}?{data.decode()} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n"
            ).encode()
        start = time.perf_counter()
        try:
            status, body = await asyncio.wait_for(self._exchange(request), self.timeout)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            await self.close()
            raise CallFailed(f"{method}: {type(exc).__name__}: {exc}") from exc
        took = time.perf_counter() - start
        if status != 200:
            raise CallFailed(f"{method}: HTTP {status}: {body[:200]!r}")
        try:
            return took, json.loads(body)["response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CallFailed(f"{method}: malformed reply {body[:200]!r}") from exc

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.connects += 1
        reader, writer = self._reader, self._writer
        assert reader is not None
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise EOFError("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for _ in range(200):  # bounded: tornado sends a handful of headers
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await self._read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return status, body

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        for _ in range(1_000_000):
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readline()  # the blank line after the last chunk (no trailers sent)
                break
            parts.append(await reader.readexactly(size))
            await reader.readline()
        return b"".join(parts)
