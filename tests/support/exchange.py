"""One raw HTTP exchange with a daemon, kept whole for comparing two daemons' answers."""

from __future__ import annotations

import gzip
import json
import urllib.parse
from typing import Any

from tests.support.daemon import Luigid

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

#: status, reason, every header but Date (in order), body
Reply = tuple[int, str, list[tuple[str, str]], bytes]


def form(data: Any) -> bytes:
    """A form body carrying ``data`` (JSON-encoded unless it is already text), as luigi sends it."""
    return urllib.parse.urlencode({"data": data if isinstance(data, str) else json.dumps(data)}).encode()


def exchange(
    daemon: Luigid, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One request on a fresh connection (a form body gets the form Content-Type unless told)."""
    conn = daemon.connection()
    if body is not None and headers is None:
        headers = FORM
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        data = reply.read()
        kept = [(k, v) for k, v in reply.getheaders() if k.lower() != "date"]
        return reply.status, reply.reason, kept, data
    finally:
        conn.close()


def unzipped(reply: Reply) -> Reply:
    """A gzip reply with its body decompressed (a gzip header holds the second it was made in)."""
    status, reason, headers, body = reply
    return status, reason, headers, gzip.decompress(body)


def comparable(reply: Reply) -> Reply:
    """What two daemons must agree on: a gzip body compared decompressed."""
    return unzipped(reply) if ("Content-Encoding", "gzip") in reply[2] else reply
