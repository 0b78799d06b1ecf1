"""Wire-protocol client: the HTTP calls luigi's workers and web UI make, over one keep-alive connection."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any
from urllib.parse import urlencode

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class RpcError(Exception):
    """A call that did not come back as HTTP 200 with a ``response`` key."""


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago (other helpers share this machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RpcClient:
    """One persistent HTTP/1.1 connection; workers POST a form body, the web UI GETs a query string."""

    def __init__(self, port: int, timeout: float = 300.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def get(self, path: str) -> bytes:
        """GET a page or a UI endpoint (``/ui/tasks?...``); the body of a 200, else RpcError."""
        return self._request(path, "GET", path)

    def call(self, method: str, args: dict[str, Any], http_method: str = "POST") -> Any:
        """Send one RPC and return its ``response``; any transport or protocol failure raises RpcError."""
        return self._decode(method, self._exchange(method, args, http_method))

    def _exchange(self, method: str, args: dict[str, Any], http_method: str) -> bytes:
        """One request/response exchange: the raw reply body of a 200."""
        encoded = urlencode({"data": json.dumps(args)})
        if http_method == "POST":
            return self._request(method, "POST", f"/api/{method}", body=encoded, headers=_FORM)
        return self._request(method, "GET", f"/api/{method}?{encoded}")

    def _request(
        self, label: str, verb: str, path: str, body: str | None = None, headers: Any = None
    ) -> bytes:
        """The body of a 200; anything else raises RpcError named by ``label``."""
        conn = self._connection()
        try:
            conn.request(verb, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            reply = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            # Drop the broken connection so the next call starts a fresh one.
            self.close()
            raise RpcError(f"{label}: {type(exc).__name__}: {exc}") from exc
        if resp.status != 200:
            raise RpcError(f"{label}: HTTP {resp.status}: {reply[:200]!r}")
        return reply

    @staticmethod
    def _decode(method: str, body: bytes) -> Any:
        try:
            return json.loads(body)["response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RpcError(f"{method}: malformed reply {body[:200]!r}") from exc

    def timed_call(self, method: str, args: dict[str, Any], http_method: str = "POST") -> tuple[float, Any]:
        """(seconds, response) of one call. The clock covers the request/response exchange up to the
        last byte of the reply, not this client's own JSON decoding: on a 50 MB task_list, decoding in
        Python costs as much as the daemon's work, and the same for both daemons."""
        start = time.perf_counter()
        body = self._exchange(method, args, http_method)
        elapsed = time.perf_counter() - start
        return elapsed, self._decode(method, body)


def try_ping(port: int, worker: str, timeout: float = 1.0) -> bool:
    """True once the daemon answers a ping on a fresh connection (used for readiness polling)."""
    client = RpcClient(port, timeout=timeout)
    try:
        client.call("ping", {"worker": worker})
        return True
    except RpcError:
        return False
    finally:
        client.close()
