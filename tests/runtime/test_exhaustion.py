"""Running out of descriptors or memory, with a real daemon under a real descriptor limit.

Before issue 16 a luigid at ``ulimit -n 256`` with 400 idle connections logged the accept
error in a busy loop and never raised its soft limit to the hard one (figures in
docs/operations.md, "Resource limits").
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import Luigid, stop_all, wait_for
from tests.support.cli import run_luigid

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")

IDLE_CONNECTIONS = 400
BATCH = 100
PROMETHEUS = "[scheduler]\nmetrics_collector = prometheus\n"
#: the window over which a starved daemon's log lines and CPU time are measured
WINDOW = 3.0
#: lines it may log in that window ("a few lines a second" at most; one is expected)
MOST_LINES = 3
#: share of one CPU it may use meanwhile (a busy accept loop takes all of one)
MOST_CPU = 0.15


def under_limit(tmp_path: Path, soft: int, hard: int, config: str = PROMETHEUS) -> Luigid:
    return Luigid(tmp_path, config, prefix=["prlimit", f"--nofile={soft}:{hard}", "--"])


@pytest.fixture
def daemons() -> Iterator[list[Luigid]]:
    started: list[Luigid] = []
    yield started
    stop_all(*started)


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send nothing; connects left pending in the backlog are fine."""
    conns = []
    for _ in range(count):
        conn = socket.socket()
        conn.setblocking(False)
        conn.connect_ex(("127.0.0.1", port))
        conns.append(conn)
    return conns


def close_all(conns: list[socket.socket]) -> None:
    for conn in conns:
        conn.close()


def metric(daemon: Luigid, name: str) -> float:
    text = requests.get(f"{daemon.base}metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics:\n{text}"
    return float(match.group(1))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_with_headroom_the_soft_limit_is_raised_and_400_idle_connections_leave_it_serving(
    tmp_path: Path, daemons: list[Luigid]
) -> None:
    daemon = under_limit(tmp_path, 256, 4096)
    daemons.append(daemon.start())
    assert "Open files: soft limit 4096 (was 256), hard limit 4096" in daemon.log
    conns: list[socket.socket] = []
    try:
        # in steps that fit the listen backlog, so that no connect waits for a SYN retry
        for step in range(1, IDLE_CONNECTIONS // BATCH + 1):
            conns += open_idle(daemon.port, BATCH)
            opened = step * BATCH  # (the scrape's own connection is open too, hence ">")
            wait_for(lambda: metric(daemon, "luigid_open_connections") > opened, 20, "the connections")  # noqa: B023
        assert daemon.answers()
        assert metric(daemon, "luigid_accepts_refused_total") == 0
    finally:
        close_all(conns)
    assert "Cannot accept" not in daemon.log


def test_without_headroom_exhaustion_is_one_line_little_cpu_and_serving_resumes(
    tmp_path: Path, daemons: list[Luigid]
) -> None:
    daemon = under_limit(tmp_path, 256, 256)
    daemons.append(daemon.start())
    conns = open_idle(daemon.port, IDLE_CONNECTIONS)
    try:
        wait_for(lambda: "Too many open files" in daemon.log, 20, "the accept error")
        lines, cpu, started = daemon.log.count("\n"), cpu_seconds(daemon.proc.pid), time.monotonic()
        time.sleep(WINDOW)
        elapsed = time.monotonic() - started
        lines, cpu = daemon.log.count("\n") - lines, cpu_seconds(daemon.proc.pid) - cpu
        assert lines <= MOST_LINES, daemon.log[-3000:]
        assert cpu <= MOST_CPU * elapsed, f"{cpu:.2f} s of CPU in {elapsed:.1f} s"
    finally:
        close_all(conns)
    wait_for(daemon.answers, 20, "luigid to answer again once the connections closed")
    assert metric(daemon, "luigid_accepts_refused_total") > 0
    assert daemon.log.count("Cannot accept new connections") == 1
    assert "Traceback" not in daemon.log


def test_idle_keepalive_connections_are_closed(tmp_path: Path, daemons: list[Luigid]) -> None:
    daemon = Luigid(tmp_path, "[server]\nidle_connection_timeout = 0.5\n")
    daemons.append(daemon.start())
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as idle:
        started = time.monotonic()
        assert idle.recv(1) == b""  # closed by luigid, not by this timeout
        assert time.monotonic() - started < 5


def test_memory_past_the_threshold_is_one_warning(tmp_path: Path, daemons: list[Luigid]) -> None:
    daemon = Luigid(tmp_path, "[server]\nmemory_warning_threshold = 1MB\n")
    daemons.append(daemon.start())
    assert daemon.stop() == 0
    warnings = [line for line in daemon.log.splitlines() if "past the warning threshold" in line]
    assert len(warnings) == 1 and "1 MB ([server] memory_warning_threshold)" in warnings[0]


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("max_open_files", "10", "expected 64 or more, got 10"),
        ("max_open_files", "many", "expected an integer, got 'many'"),
        ("idle_connection_timeout", "0", "expected seconds, more than 0, got 0"),
        ("memory_warning_threshold", "lots", "expected a size such as 10485760, 10MB or 512KB, got 'lots'"),
    ],
)
def test_bad_server_limits_are_one_line_and_exit_2(
    tmp_path: Path, key: str, value: str, problem: str
) -> None:
    result = run_luigid(tmp_path, "--port", "0", config=f"[server]\n{key} = {value}\n")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"[server] {key}: {problem}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
