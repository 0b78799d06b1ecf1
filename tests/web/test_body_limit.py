"""Oversized request bodies: a 413 with a JSON error the client gets to read, whatever way
the body is sent; the limit is configurable and never below what luigi workers need."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from luigid.config import ConfigError
from luigid.web.validation import DEFAULT_MAX_REQUEST_BODY, MIN_MAX_REQUEST_BODY, request_limits_from
from tests.support import Luigid

LIMIT = MIN_MAX_REQUEST_BODY  # 1 MiB: the smallest an operator may set


@pytest.fixture(scope="module")
def luigid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Luigid]:
    daemon = Luigid(tmp_path_factory.mktemp("limit"), "[server]\nmax_request_body = 1MB\n").start()
    yield daemon
    daemon.stop()


def form_of_size(size: int) -> bytes:
    """A well-formed add_task form body of exactly ``size`` bytes (deps, then padding)."""
    deps = [f"Dep_{i:07d}" for i in range(max(0, size - 200) // 15)]  # '"Dep_0000000", '
    fields: dict[str, object] = {"worker": "w", "task_id": "Big", "deps": deps, "params": {"pad": ""}}
    missing = size - len(("data=" + json.dumps(fields)).encode())
    assert missing >= 0
    fields["params"] = {"pad": "x" * missing}
    body = ("data=" + json.dumps(fields)).encode()
    assert len(body) == size
    return body


def assert_413(response: requests.Response) -> None:
    assert response.status_code == 413
    error = response.json()["error"]
    assert f"larger than the limit of {LIMIT} bytes" in error
    assert "[server] max_request_body" in error


def still_serving(daemon: Luigid) -> bool:
    return requests.post(daemon.base + "api/ping", data={"data": '{"worker": "w"}'}, timeout=10).ok


def test_body_just_under_the_limit_is_accepted(luigid: Luigid) -> None:
    body = form_of_size(LIMIT - 100)
    response = requests.post(
        luigid.base + "api/add_task",
        data=body,
        timeout=30,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text


def test_oversized_body_gets_a_json_413_the_client_can_read(luigid: Luigid) -> None:
    body = form_of_size(LIMIT * 3)
    with requests.Session() as session:
        response = session.post(
            luigid.base + "api/add_task",
            data=body,
            timeout=30,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert_413(response)
        # the body was read and dropped, so the connection stays usable
        again = session.post(luigid.base + "api/ping", data={"data": '{"worker": "w"}'}, timeout=10)
        assert again.status_code == 200
    assert still_serving(luigid)


def test_oversized_chunked_body(luigid: Luigid) -> None:
    def chunks() -> Iterator[bytes]:
        body = form_of_size(LIMIT * 2)
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = requests.post(
        luigid.base + "api/add_task",
        data=chunks(),
        timeout=30,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["error"]
    assert still_serving(luigid)


def raw_exchange(daemon: Luigid, head: bytes) -> bytes:
    """Send request headers only, and read whatever the server answers before the body."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_expect_continue_is_answered_before_the_body(luigid: Luigid) -> None:
    head = (
        f"POST /api/add_task HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {LIMIT * 100}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    reply = raw_exchange(luigid, head)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"100 (Continue)" not in reply
    assert b'"error"' in reply
    assert still_serving(luigid)


def test_huge_declared_body_is_refused_without_reading_it(luigid: Luigid) -> None:
    head = (
        f"POST /api/add_task HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {10 * 1024**3}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    ).encode()
    reply = raw_exchange(luigid, head)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"larger than the limit" in reply
    assert still_serving(luigid)


def test_luigi_client_reports_the_limit(luigid: Luigid, luigi_fast_retries: Any) -> None:
    from luigi.rpc import RemoteScheduler, RPCError

    client: Any = RemoteScheduler(luigid.base)
    with pytest.raises(RPCError) as raised:
        client.add_task(worker="w", task_id="Huge", deps=[f"Dep_{i:07d}" for i in range(LIMIT // 10)])
    assert "413" in repr(raised.value.sub_exception)
    assert "larger than the limit" in repr(raised.value.sub_exception)


def test_limit_config() -> None:
    assert request_limits_from({}).max_request_body == DEFAULT_MAX_REQUEST_BODY
    assert request_limits_from({"server": {"max_request_body": "32MB"}}).max_request_body == 32 * 1024**2
    assert request_limits_from({"server": {"max_request_body": "2097152"}}).max_request_body == 2 * 1024**2
    with pytest.raises(ConfigError, match=r"\[server\] max_request_body: expected a size"):
        request_limits_from({"server": {"max_request_body": "lots"}})
    with pytest.raises(ConfigError, match=r"below the 1048576 luigi workers may need"):
        request_limits_from({"server": {"max_request_body": "10KB"}})


def test_bad_limit_stops_luigid_with_one_line(tmp_path: Path) -> None:
    daemon = Luigid(tmp_path, "[server]\nmax_request_body = 12 parsecs\n", port=0).start(wait=False)
    assert daemon.wait(timeout=30) != 0
    output = (tmp_path / "luigid.log").read_text()
    lines = [line for line in output.splitlines() if "max_request_body" in line]
    assert lines and "luigi.cfg [server] max_request_body: expected a size" in lines[0]
    assert "Traceback" not in output
