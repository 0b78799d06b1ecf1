"""A front's lean path (``luigid.runtime.lean``): the same answers as the single process.

A corpus of requests, each sent to a single-process luigid and to one with two fronts (same
config: auth, CORS, metrics, a small body limit), in the same order, so both hold the same
state: status, reason, every header but ``Date`` (in order) and the body must be equal. Each
entry also says which path a front takes for it, checked against ``plain_call``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httputil

from bench.daemon import front_pids
from luigid.runtime.lean import plain_call
from tests.auth.test_auth import basic
from tests.runtime.test_fronts import ORIGIN, SMALL_BODY_LIMIT, config
from tests.support import Luigid, stop_all, wait_for
from tests.support.exchange import FORM, Reply, comparable, exchange, form
from tests.support.fronts import FRONT_COUNT, add_chain, single_and_fronts

WORKER = {**basic("wes"), **FORM}
VIEWER = {**basic("vic"), **FORM}
ZIP = {"Accept-Encoding": "gzip, deflate"}  # as luigi's client (requests) sends
W = "w-lean"
LEAN, HANDLER = "lean", "handler"
IDLE_SECONDS = 0.5

TASK = {
    "worker": W,
    "task_id": "Lean_a_1",
    "status": "PENDING",
    "runnable": True,
    "deps": ["Lean_b_1"],
    "new_deps": [],
    "expl": None,
    "resources": {"db": 1},
    "priority": 0,
    "family": "Lean",
    "module": "tests.lean",
    "params": {"name": "a"},
    "param_visibilities": {"name": 0},
    "accepts_messages": True,
    "assistant": False,
    "tracking_url": None,
    "batchable": False,
    "retry_policy_dict": {"retry_count": None, "disable_hard_timeout": None, "disable_window": None},
    "owners": [],
}
DEP = {**TASK, "task_id": "Lean_b_1", "deps": [], "params": {"name": "b"}}


def _multipart() -> tuple[bytes, dict[str, str]]:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="data"\r\n\r\n{"worker": "w-lean"}\r\n--XyZ--\r\n'
    return body, {**basic("wes"), "Content-Type": "multipart/form-data; boundary=XyZ"}


MULTIPART_BODY, MULTIPART_HEADERS = _multipart()
QUERY = "data=%7B%22worker%22%3A%22w-lean%22%7D"

Entry = tuple[str, str, str, bytes | None, dict[str, str], str]


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def call(what: str, method: str, data: Any, headers: dict[str, str] = WORKER, taken: str = LEAN) -> Entry:
    """A form POST of ``data`` to ``/api/<method>``."""
    return what, "POST", f"/api/{method}", form(data), headers, taken


def ping(what: str, headers: dict[str, str], data: Any = None, taken: str = LEAN) -> Entry:
    return call(what, "ping", {"worker": W} if data is None else data, headers, taken)


WORKER_ZIP = {**WORKER, **ZIP}
GET_WORK = {"worker": W, "host": "h", "assistant": False, "current_tasks": []}
DONE = {
    "worker": W,
    "task_id": "Lean_b_1",
    "status": "DONE",
    "expl": None,
    "family": "Lean",
    "params": {"name": "b"},
}
FAILURE = {
    "worker": W,
    "task_name": "Lean(name=c)",
    "family": "Lean",
    "params": {"name": "c"},
    "expl": "boom",
}
BATCHER = {"worker": W, "task_family": "Lean", "batched_args": ["name"], "max_batch_size": 10}
ON_B = {"task_id": "Lean_b_1"}
CHARSET = {**basic("wes"), "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
JSON_TYPED = {**basic("wes"), "Content-Type": "application/json"}
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}

#: (what, verb, path, body, headers, the path a front takes), sent in this order
CORPUS: list[Entry] = [
    # what luigi workers send, in a worker's order (requests' Accept-Encoding on most)
    call("add_worker", "add_worker", {"worker": W, "info": [["host", "h"], ["workers", 1]]}, WORKER_ZIP),
    ping("ping", WORKER_ZIP),
    call("add_task of a dependency", "add_task", DEP, WORKER_ZIP),
    call("add_task with deps", "add_task", TASK, WORKER_ZIP),
    call("count_pending", "count_pending", {"worker": W}),
    call("get_work", "get_work", GET_WORK, WORKER_ZIP),
    call("set_task_status_message", "set_task_status_message", {**ON_B, "status_message": "half"}),
    call("set_task_progress_percentage", "set_task_progress_percentage", {**ON_B, "progress_percentage": 50}),
    call("get_running_task_resources", "get_running_task_resources", ON_B),
    call(
        "decrease_running_task_resources",
        "decrease_running_task_resources",
        {**ON_B, "decrease_resources": {"db": 1}},
    ),
    call(
        "add_scheduler_message_response",
        "add_scheduler_message_response",
        {**ON_B, "message_id": "m", "response": "ok"},
    ),
    call("add_task DONE", "add_task", DONE, WORKER_ZIP),
    call("add_task_batcher", "add_task_batcher", BATCHER),
    call("announce_scheduling_failure", "announce_scheduling_failure", FAILURE),
    ping("form with a charset", CHARSET),
    ("GET with data in the query", "GET", f"/api/count_pending?{QUERY}", None, basic("wes"), LEAN),
    ("POST with data in the query", "POST", f"/api/ping?{QUERY}", b"", WORKER, LEAN),
    call("a viewer's read", "is_paused", {}, VIEWER),
    call("a small reply to a gzip client", "get_task_status_message", ON_B, {**VIEWER, **ZIP}),
    # bad input: the 400s on the lean path, the rest on the handler's
    call("bad JSON", "add_task", "{not json"),
    ping("data not an object", WORKER, "[1, 2]"),
    call("missing argument", "add_task", {"worker": W}),
    ping("unknown argument", WORKER, {"worker": W, "colour": "red"}),
    call("wrong type", "add_task", {"worker": W, "task_id": 7}),
    ping("nested too deep", WORKER, {"worker": W, "x": _nested(70)}),
    ("data not UTF-8", "POST", "/api/ping", b"data=%FF%FE", WORKER, LEAN),
    ("bad form encoding", "POST", "/api/ping", b"data=%7B%7D&&=&%", WORKER, LEAN),
    call("the scheduler's own 400", "set_task_status_message", {"task_id": "Lean_x", "status_message": 1}),
    call("unknown method 404", "no_such_rpc", {}, WORKER, HANDLER),
    call("escaped method name", "pin%67", {"worker": W}, WORKER, HANDLER),
    (
        "body over the limit 413",
        "POST",
        "/api/ping",
        b"data=" + b"x" * (SMALL_BODY_LIMIT + 10),
        WORKER,
        HANDLER,
    ),
    ping("Expect: 100-continue", {**WORKER, "Expect": "100-continue"}, taken=HANDLER),
    ("multipart body", "POST", "/api/ping", MULTIPART_BODY, MULTIPART_HEADERS, HANDLER),
    ("JSON body", "POST", "/api/ping", b'{"worker": "w-lean"}', JSON_TYPED, HANDLER),
    ("HEAD", "HEAD", "/api/ping", None, basic("wes"), HANDLER),
    ("preflight", "OPTIONS", "/api/ping", None, PREFLIGHT, HANDLER),
    # CORS
    ping("allowed Origin", {**WORKER, "Origin": ORIGIN}),
    ping("other Origin", {**WORKER, "Origin": "http://elsewhere.example"}),
    ping("allowed Origin, an error", {**WORKER, **ZIP, "Origin": ORIGIN}, "{no"),
    ping("allowed Origin, refused", {**FORM, "Origin": ORIGIN}),
    # the access check
    ping("no credentials 401", {**FORM, **ZIP}),
    ping("bad password 401", {**basic("wes", "nope"), **FORM}),
    call("viewer making a worker call 403", "add_task", {"worker": W, "task_id": "T"}, VIEWER),
    ("a change over GET 405", "GET", f"/api/ping?{QUERY}", None, basic("wes"), LEAN),
    call("no credentials, unknown method", "nothing_here", {}, FORM, HANDLER),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Luigid, Luigid]]:
    single_dir, fronts_dir = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("fronts")
    with single_and_fronts(single_dir, fronts_dir, config) as both:
        yield both


IDS = [entry[0] for entry in CORPUS]


@pytest.mark.parametrize(("what", "verb", "path", "body", "headers", "taken"), CORPUS, ids=IDS)
def test_each_answer_is_the_single_process_one(
    pair: tuple[Luigid, Luigid],
    what: str,
    verb: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    taken: str,
) -> None:
    single, fronts = pair
    expected = exchange(single, verb, path, body, headers)
    got = exchange(fronts, verb, path, body, headers)
    assert comparable(got) == comparable(expected)


@pytest.mark.parametrize(("what", "verb", "path", "body", "headers", "taken"), CORPUS, ids=IDS)
def test_each_request_takes_the_path_it_should(
    what: str, verb: str, path: str, body: bytes | None, headers: dict[str, str], taken: str
) -> None:
    sent = tornado.httputil.HTTPHeaders({"Host": "127.0.0.1", "Accept-Encoding": "identity", **headers})
    if body is not None:
        sent["Content-Length"] = str(len(body))
    start = tornado.httputil.RequestStartLine(verb, path, "HTTP/1.1")
    assert (plain_call(start, sent, SMALL_BODY_LIMIT) is not None) == (taken == LEAN)


def _masked(body: bytes) -> Any:
    """A listing with the times (which differ between two daemons) taken out."""
    value = json.loads(body)
    for task in value["response"].values():
        for key in ("start_time", "last_updated", "time_running"):
            task.pop(key, None)
    return value


def _same_listing(got: Reply, expected: Reply) -> None:
    got, expected = comparable(got), comparable(expected)
    assert got[:3] == expected[:3]  # streamed: chunked, so no Content-Length to differ
    assert _masked(got[3]) == _masked(expected[3])


def test_big_streamed_replies_are_the_single_process_ones(pair: tuple[Luigid, Luigid]) -> None:
    for daemon in pair:
        add_chain(daemon, "Big", 2500, WORKER)  # more than one piece (1,000 tasks each)
    single, fronts = pair
    listing = form({"status": "PENDING", "search": "Big"})
    for headers in (VIEWER, {**VIEWER, **ZIP}, {**VIEWER, **ZIP, "Origin": ORIGIN}):
        got = exchange(fronts, "POST", "/api/task_list", listing, headers)
        assert got[0] == 200 and len(_masked(comparable(got)[3])["response"]) == 2500
        _same_listing(got, exchange(single, "POST", "/api/task_list", listing, headers))
    graph = form({"task_id": "Big_2499"})
    for headers in (VIEWER, {**VIEWER, **ZIP}):
        got = exchange(fronts, "POST", "/api/dep_graph", graph, headers)
        assert len(_masked(comparable(got)[3])["response"]) == 2500
        _same_listing(got, exchange(single, "POST", "/api/dep_graph", graph, headers))


def _raw(daemon: Luigid, request: bytes) -> bytes:
    """What the daemon sends back on a connection given ``request``: until it closes the
    connection, or sends nothing more for half a second (a kept-alive one). The client never
    half-closes: tornado drops the answers still owed to a half-closed connection when they
    come asynchronously, as through any front."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as conn:
        conn.sendall(request)
        conn.settimeout(IDLE_SECONDS)
        parts = []
        with contextlib.suppress(TimeoutError):
            while chunk := conn.recv(65536):
                parts.append(chunk)
    return b"".join(parts)


def _without_dates(raw: bytes) -> bytes:
    return b"\r\n".join(line for line in raw.split(b"\r\n") if not line.startswith(b"Date: "))


def test_keep_alive_and_http_1_0_on_the_wire_as_the_single_process(pair: tuple[Luigid, Luigid]) -> None:
    body = form({"worker": W})
    auth = basic("wes")["Authorization"]
    head = f"Host: x\r\nAuthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    one = f"POST /api/ping HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    old = f"POST /api/ping HTTP/1.0\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    kept = f"POST /api/ping HTTP/1.0\r\nConnection: keep-alive\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    old_kept = kept.encode() + body
    bad = f"POST /api/ping HTTP/1.1\r\n{head}Content-Length: 9\r\n\r\ndata=%7Bx".encode()
    no_host = f"POST /api/ping HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    single, fronts = pair
    for request in (one * 3, old, old_kept + one, one + bad + one, no_host):
        assert _without_dates(_raw(fronts, request)) == _without_dates(_raw(single, request))


def test_a_client_hanging_up_on_a_streamed_reply_is_let_go(pair: tuple[Luigid, Luigid]) -> None:
    _, fronts = pair
    add_chain(fronts, "Big", 2500, WORKER)  # (a no-op when the test above ran: the same tasks again)
    body = form({"status": "PENDING", "search": "Big"})
    auth = basic("vic")["Authorization"]
    request = (
        f"POST /api/task_list HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", fronts.port), timeout=10) as conn:
            conn.sendall(request)
            assert conn.recv(1024).startswith(b"HTTP/1.1 200 OK")
        # closed with most of the reply unread: the front cancels the rest
    for _ in range(20):
        assert exchange(fronts, "POST", "/api/ping", form({"worker": W}), WORKER)[0] == 200
    assert "Traceback" not in fronts.log


def test_a_refused_call_closes_its_connection_as_the_handler_does(pair: tuple[Luigid, Luigid]) -> None:
    # answered before its body is read: tornado then closes the connection, on both paths
    body = form({"worker": W})
    request = (
        f"POST /api/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    single, fronts = pair
    got = _raw(fronts, request * 2)
    assert got.count(b"HTTP/1.1 401") == 1
    assert _without_dates(got) == _without_dates(_raw(single, request * 2))


def test_a_proxy_s_client_address_is_logged_for_its_request_only(tmp_path: Path) -> None:
    daemon = Luigid(tmp_path, "[server]\nhttp_processes = 2\n[scheduler]\nslow_request_seconds = 0\n").start()
    try:
        wait_for(lambda: len(front_pids(daemon.proc.pid)) == FRONT_COUNT, 30, "two fronts")
        conn = daemon.connection()  # one keep-alive connection: the address must not stay
        try:
            for path, extra in [
                ("/api/ping", {"X-Real-Ip": "10.9.8.7"}),
                ("/api/ping", {}),
                ("/api/no_such_rpc", {"X-Forwarded-For": "10.1.1.1"}),
                ("/api/count_pending", {}),
            ]:
                conn.request("POST", path, body=form({"worker": W}), headers={**FORM, **extra})
                conn.getresponse().read()
        finally:
            conn.close()
        expected = [
            "200 POST /api/ping (10.9.8.7)",
            "200 POST /api/ping (127.0.0.1)",
            "404 POST /api/no_such_rpc (10.1.1.1)",  # the handler's path
            "200 POST /api/count_pending (127.0.0.1)",
        ]
        wait_for(lambda: "/api/count_pending" in daemon.log, 10, "the access lines")
        lines = re.findall(r"WARNING: (\d{3} POST \S+ \(\S+\))", daemon.log)
        assert lines == expected
    finally:
        stop_all(daemon)
