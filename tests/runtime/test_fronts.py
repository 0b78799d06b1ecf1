"""HTTP front processes (``[server] http_processes``): a real luigid with two fronts on loopback,
next to a single-process one with the same config; real luigi workers; the fronts' life.

The byte-for-byte comparisons send the same raw request to both daemons and compare status,
reason, every header but ``Date``, and the body.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.daemon import front_pids
from tests.auth.test_auth import PASSWORDS, auth_section, basic
from tests.auth.test_luigi_workers import assert_pipeline_ran, run_pipeline
from tests.support import Luigid, stop_all, wait_for
from tests.support.cli import pid_alive, run_luigid
from tests.support.exchange import FORM, comparable, exchange, form
from tests.support.fronts import add_chain, single_and_fronts

FRONTS = "[server]\nhttp_processes = 2\n"
ORIGIN = "http://ui.example"
SMALL_BODY_LIMIT = 1024 * 1024


def config(folder: Path, fronts: bool) -> str:
    text = (
        auth_section(str(folder))
        + f"""
[cors]
enabled = true
allowed_origins = ["{ORIGIN}"]

[scheduler]
metrics_collector = prometheus

[resources]
db = 1

[server]
max_request_body = {SMALL_BODY_LIMIT}
"""
    )
    return text + ("http_processes = 2\n" if fronts else "")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Luigid, Luigid]]:
    """(single process, two fronts), same config."""
    with single_and_fronts(
        tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("fronts"), config
    ) as both:
        yield both


WORKER = {**basic("wes"), **FORM}
VIEWER = {**basic("vic"), "Content-Type": "application/x-www-form-urlencoded"}

SAME_REPLIES: list[tuple[str, str, str, bytes | None, dict[str, str]]] = [
    ("ping", "POST", "/api/ping", form({"worker": "w-same"}), WORKER),
    ("ping with CORS", "POST", "/api/ping", form({"worker": "w-same"}), {**WORKER, "Origin": ORIGIN}),
    ("preflight", "OPTIONS", "/api/ping", None, {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}),
    ("GET query", "GET", "/api/ping?data=%7B%22worker%22%3A%22w-get%22%7D", None, basic("wes")),
    ("unknown method 404", "POST", "/api/no_such_rpc", form({}), WORKER),
    ("bad JSON 400", "POST", "/api/add_task", form("{not json"), WORKER),
    ("missing argument 400", "POST", "/api/add_task", form({"worker": "w"}), WORKER),
    ("wrong type 400", "POST", "/api/add_task", form({"worker": "w", "task_id": 7}), WORKER),
    (
        "scheduler's own error 400",
        "POST",
        "/api/set_task_status_message",
        form({"task_id": "x", "status_message": 1}),
        WORKER,
    ),
    ("body over the limit 413", "POST", "/api/ping", b"data=" + b"x" * (SMALL_BODY_LIMIT + 10), WORKER),
    ("no credentials 401", "POST", "/api/ping", form({"worker": "w"}), {}),
    ("bad password 401", "POST", "/api/ping", form({"worker": "w"}), {"Authorization": "Basic d2VzOm5vcGU="}),
    (
        "viewer making a worker call 403",
        "POST",
        "/api/add_task",
        form({"worker": "w", "task_id": "T"}),
        VIEWER,
    ),
    ("viewer reading", "POST", "/api/task_search", form({"task_str": "Nothing"}), VIEWER),
    ("root redirect", "GET", "/", None, basic("vic")),
    ("health check", "HEAD", "/", None, {}),
    ("static file", "GET", "/static/visualiser/index.html", None, basic("vic")),
    (
        "static file, gzip",
        "GET",
        "/static/visualiser/index.html",
        None,
        {**basic("vic"), "Accept-Encoding": "gzip"},
    ),
    ("missing static file", "GET", "/static/nope.js", None, basic("vic")),
    ("page without credentials", "GET", "/static/visualiser/index.html", None, {}),
    ("unknown path 404", "GET", "/no/such/page", None, basic("vic")),
    ("ui task list", "GET", "/ui/tasks?status=PENDING", None, basic("vic")),
]


@pytest.mark.parametrize(
    ("what", "verb", "path", "body", "headers"), SAME_REPLIES, ids=[r[0] for r in SAME_REPLIES]
)
def test_replies_are_those_of_the_single_process(
    pair: tuple[Luigid, Luigid], what: str, verb: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    single, fronts = pair
    expected = exchange(single, verb, path, body, headers)
    got = exchange(fronts, verb, path, body, headers)
    assert comparable(got) == comparable(expected)


def test_a_static_file_revalidates_with_304_through_a_front(pair: tuple[Luigid, Luigid]) -> None:
    single, fronts = pair
    path = "/static/visualiser/index.html"
    etag = dict(exchange(fronts, "GET", path, None, basic("vic"))[2])["Etag"]
    conditional = {**basic("vic"), "If-None-Match": etag}
    got = exchange(fronts, "GET", path, None, conditional)
    assert got[0] == 304
    assert got == exchange(single, "GET", path, None, conditional)


def _masked(reply: bytes) -> Any:
    """A task list with the times (which differ between two daemons) taken out."""
    value = json.loads(reply)
    for task in value["response"].values():
        for key in ("start_time", "last_updated", "time_running"):
            task.pop(key, None)
    return value


def test_streamed_replies_arrive_whole_and_gzipped(pair: tuple[Luigid, Luigid]) -> None:
    single, fronts = pair
    for daemon in pair:
        add_chain(daemon, "Stream", 2500, WORKER)  # more than one piece (1,000 tasks each)
    listing = form({"status": "PENDING", "search": "Stream"})
    plain = exchange(fronts, "POST", "/api/task_list", listing, VIEWER)
    expected = exchange(single, "POST", "/api/task_list", listing, VIEWER)
    assert plain[0] == 200 and len(json.loads(plain[3])["response"]) == 2500
    assert _masked(plain[3]) == _masked(expected[3])
    assert [h for h in plain[2] if h[0] != "Content-Length"] == [
        h for h in expected[2] if h[0] != "Content-Length"
    ]
    zipped = exchange(fronts, "POST", "/api/task_list", listing, {**VIEWER, "Accept-Encoding": "gzip"})
    assert dict(zipped[2])["Content-Encoding"] == "gzip"
    assert _masked(gzip.decompress(zipped[3])) == _masked(plain[3])
    graph = exchange(fronts, "POST", "/api/dep_graph", form({"task_id": "Stream_2499"}), VIEWER)
    assert len(json.loads(graph[3])["response"]) == 2500


def test_luigi_workers_run_a_dag_through_the_fronts(pair: tuple[Luigid, Luigid], tmp_path: Path) -> None:
    _, fronts = pair
    done = run_pipeline(fronts.url("wes", PASSWORDS["wes"]), tmp_path / "run")
    assert_pipeline_ran(done, tmp_path / "run")
    reply = requests.post(
        fronts.base + "api/task_list",
        data={"data": '{"status": "DONE"}'},
        auth=("vic", PASSWORDS["vic"]),
        timeout=10,
    )
    names = {task["params"].get("name") for task in reply.json()["response"].values()}
    assert {"raw", "left", "right", "report"} <= names


def test_metrics_count_the_calls_the_fronts_answered(pair: tuple[Luigid, Luigid]) -> None:
    for daemon in pair:  # each call counted under its status, by the single process as through fronts
        for _ in range(7):
            exchange(daemon, "POST", "/api/ping", form({"worker": "w-metrics"}), WORKER)
        for _ in range(3):
            exchange(daemon, "POST", "/api/fetch_error", form("{not json"), WORKER)

        def counted(code: str, method: str, daemon: Luigid = daemon) -> float:
            text = requests.get(daemon.base + "metrics", auth=("vic", PASSWORDS["vic"]), timeout=10).text
            pattern = rf'^luigid_rpc_requests_total\{{code="{code}",method="{method}"\}} (\S+)$'
            found = re.findall(pattern, text, re.MULTILINE)
            return float(found[0]) if found else 0.0

        wait_for(lambda: counted("200", "ping") >= 7, 10, "the pings in /metrics")
        assert counted("400", "fetch_error") == 3
        assert counted("200", "fetch_error") == 0
    text = requests.get(pair[1].base + "metrics", auth=("vic", PASSWORDS["vic"]), timeout=10).text
    assert re.search(r"^luigid_open_connections \d", text, re.MULTILINE)


def test_the_fronts_access_log_and_slow_warnings_reach_the_daemon_log(tmp_path: Path) -> None:
    # every request counts as slow: each one a warning line, written by a front
    daemon = _own(tmp_path / "d", "[scheduler]\nslow_request_seconds = 0\n")
    try:
        pids = front_pids(daemon.proc.pid)
        exchange(daemon, "POST", "/api/ping", form({"worker": "w-log"}))
        exchange(daemon, "POST", "/api/no_such_rpc_logged", form({}))
        line = re.compile(
            r"tornado\.access\[(\d+)\] WARNING: 404 POST /api/no_such_rpc_logged \(127\.0\.0\.1\)"
        )
        wait_for(lambda: line.search(daemon.log) is not None, 10, "the access line")
        match = line.search(daemon.log)
        assert match is not None and int(match.group(1)) in pids
        assert re.search(r"WARNING: 200 POST /api/ping \(127\.0\.0\.1\)", daemon.log)
    finally:
        stop_all(daemon)


def test_a_killed_front_is_replaced_and_calls_keep_succeeding(pair: tuple[Luigid, Luigid]) -> None:
    _, fronts = pair
    before = front_pids(fronts.proc.pid)
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    failures = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = exchange(fronts, "POST", "/api/ping", form({"worker": "w-kill"}), WORKER)[0]
        failures += status != 200
        now = front_pids(fronts.proc.pid)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.05)
    now = front_pids(fronts.proc.pid)
    assert len(now) == 2 and before[0] not in now and before[1] in now
    assert failures == 0
    for _ in range(20):
        assert exchange(fronts, "POST", "/api/ping", form({"worker": "w-kill"}), WORKER)[0] == 200
    wait_for(lambda: f"HTTP front process {before[0]} exited" in fronts.log, 10, "the restart line")


def _own(tmp_path: Path, extra: str = "") -> Luigid:
    daemon = Luigid(tmp_path, FRONTS + extra)
    daemon.start()
    wait_for(lambda: len(front_pids(daemon.proc.pid)) == 2, 30, "two fronts")
    return daemon


def test_sigterm_drains_saves_and_leaves_no_front(tmp_path: Path) -> None:
    daemon = _own(tmp_path / "d")
    try:
        pids = front_pids(daemon.proc.pid)
        args = {"worker": "w-term", "task_id": "Kept_1", "family": "Kept"}
        assert exchange(daemon, "POST", "/api/add_task", form(args))[0] == 200
        assert daemon.stop(strict=True) == 0
        assert not any(pid_alive(pid) for pid in pids)
        assert "Saved state" in daemon.log
        daemon.start()
        reply = exchange(daemon, "POST", "/api/task_list", form({"status": "PENDING"}))
        assert "Kept_1" in json.loads(reply[3])["response"]
    finally:
        stop_all(daemon)


def test_a_call_in_flight_at_sigterm_is_answered(tmp_path: Path) -> None:
    daemon = _own(tmp_path / "d", "[scheduler]\njournal_fsync = always\n")
    try:
        conn = socket.create_connection(("127.0.0.1", daemon.port), timeout=20)
        body = form({"worker": "w-flight", "task_id": "Flight_1"})
        request = (
            b"POST /api/add_task HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        conn.sendall(request)  # the head only: the request is in flight until its body comes
        time.sleep(0.5)
        daemon.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        conn.sendall(body)
        reply = conn.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        conn.close()
        assert daemon.wait() == 0
    finally:
        stop_all(daemon)


def test_kill_9_of_the_scheduler_process_leaves_no_front(tmp_path: Path) -> None:
    daemon = _own(tmp_path / "d")
    pids = front_pids(daemon.proc.pid)
    daemon.kill()
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 10, "the fronts to exit")


def test_fronts_running_out_of_descriptors_pause_and_resume(tmp_path: Path) -> None:
    daemon = Luigid(
        tmp_path,
        FRONTS + "[scheduler]\nmetrics_collector = prometheus\n",
        prefix=["prlimit", "--nofile=256:256", "--"],
    )
    daemon.start()
    try:
        wait_for(lambda: len(front_pids(daemon.proc.pid)) == 2, 30, "two fronts")
        conns = []
        for _ in range(600):
            conn = socket.socket()
            conn.setblocking(False)
            conn.connect_ex(("127.0.0.1", daemon.port))
            conns.append(conn)
        unsent = list(conns)

        def accept_error() -> bool:
            # With SYN cookies on (Linux's default), a handshake the kernel finished while the
            # accept queue was full exists on the client's side only, until data comes: so each
            # connection sends the start of a request, once it can.
            for conn in list(unsent):
                with contextlib.suppress(OSError):
                    conn.send(b"GET")
                    unsent.remove(conn)
            return "Too many open files" in daemon.log

        wait_for(accept_error, 20, "the accept error")
        for conn in conns:
            conn.close()
        wait_for(daemon.answers, 20, "luigid to answer again once the connections closed")

        def refused() -> float:
            text = requests.get(daemon.base + "metrics", timeout=10).text
            match = re.search(r"^luigid_accepts_refused_total (\S+)$", text, re.MULTILINE)
            assert match is not None, text
            return float(match.group(1))

        # the fronts report their counts once a second
        wait_for(lambda: refused() > 0, 10, "the failed accepts in /metrics")
        assert daemon.log.count("Cannot accept new connections") <= 2  # one per front at most
        assert "Traceback" not in daemon.log
    finally:
        stop_all(daemon)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "expected 1 to 64 processes, got 0"),
        ("two", "expected an integer, got 'two'"),
    ],
)
def test_a_bad_http_processes_is_one_line_and_exit_2(tmp_path: Path, value: str, problem: str) -> None:
    result = run_luigid(tmp_path, "--port", "0", config=f"[server]\nhttp_processes = {value}\n")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"[server] http_processes: {problem}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fronts_with_ha_are_refused_at_start(tmp_path: Path) -> None:
    config = "[server]\nhttp_processes = 2\n[ha]\ndb_connection = postgresql://postgres@127.0.0.1/test\n"
    result = run_luigid(tmp_path, "--port", "0", config=config)
    assert result.returncode == 2
    assert "[server] http_processes: front processes cannot be used with [ha] db_connection" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_one_process_is_the_default(tmp_path: Path) -> None:
    daemon = Luigid(tmp_path, "").start()
    try:
        assert front_pids(daemon.proc.pid) == []
        assert "front processes" not in daemon.log
    finally:
        stop_all(daemon)


def test_fronts_serve_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "luigid.sock")
    daemon = Luigid(tmp_path / "d", FRONTS, unix_socket=path).start()
    try:
        wait_for(lambda: len(front_pids(daemon.proc.pid)) == 2, 30, "two fronts")
        status, _, _, body = exchange(daemon, "POST", "/api/ping", form({"worker": "w-unix"}))
        assert status == 200 and json.loads(body) == {"response": {"rpc_messages": []}}
        assert daemon.stop(strict=True) == 0
        assert not os.path.exists(path)  # removed at exit, as without fronts
    finally:
        stop_all(daemon)


@pytest.mark.slow
def test_a_full_disk_is_refused_503_through_the_fronts_and_reads_go_on(tmp_path: Path) -> None:
    from tests.support.tmpfs import small_tmpfs
    from tests.system.faults.test_disk_full import CONFIG, add_task, fill_until_refused, task_ids

    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        daemon = Luigid(tmp_path / "run", CONFIG + FRONTS, state_path=disk / "state.pickle")
        try:
            daemon.start()
            wait_for(lambda: len(front_pids(daemon.proc.pid)) == 2, 30, "two fronts")
            acknowledged, refused = fill_until_refused(daemon, disk)
            reply = refused[0]
            assert (
                reply.status_code == 503
                and reply.headers["Content-Type"] == "application/json; charset=UTF-8"
            )
            error = reply.json()["error"]
            assert error.startswith("add_task: ") and "No space left on device" in error
            assert reply.reason == error[:200].strip()  # luigi's client shows the reason phrase
            assert acknowledged <= task_ids(daemon)  # reads go on
            (disk / "filler").unlink()
            wait_for(lambda: add_task(daemon, 90_000).status_code == 200, 10, "writes to resume")
            acknowledged.add("Fill_90000")
            daemon.kill()
            daemon.start()
            assert acknowledged <= task_ids(daemon)
            assert "Traceback" not in daemon.log
        finally:
            stop_all(daemon)
