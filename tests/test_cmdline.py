"""``luigid`` run as operators run it: the console script in a real process, on loopback
(the helpers are in tests/support/cli.py)."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from luigid.config import SchedulerConfig
from luigid.runtime import stalls
from luigid.scheduler import Scheduler
from tests.support import free_port, wait_for
from tests.support.cli import CliLuigid, error_line, run_luigid, saved_task_ids
from tests.support.daemon import START_TIMEOUT


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_signal_saves_state_once_and_exits_zero(luigids: Callable[..., CliLuigid], sig: int) -> None:
    server = luigids().start()
    server.call("add_task", worker="w1", task_id="A_1", family="A", status="PENDING")
    assert server.stop(sig) == 0
    assert saved_task_ids(server.state_path) == {"A_1"}
    assert server.stderr().count("Saved state in") == 1


def test_longest_event_loop_stall_is_logged_at_shutdown_and_scraped(
    luigids: Callable[..., CliLuigid],
) -> None:
    server = luigids(config="[scheduler]\nmetrics_collector = prometheus\n").start()
    server.call("ping", worker="w1")
    metrics = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    assert "luigid_event_loop_longest_stall_seconds " in metrics
    assert server.stop() == 0
    log = server.stderr()
    assert log.count("Longest event-loop stall since start: ") == 1
    # measured up to the final save, which blocks on purpose and is left out
    assert log.index("Longest event-loop stall") < log.index("Saved state in")


def test_stall_trace_names_what_held_the_loop_and_the_api_still_answers(
    luigids: Callable[..., CliLuigid],
) -> None:
    server = luigids(config="[scheduler]\nstall_trace = true\n").start()
    server.call("add_task", worker="w1", task_id="A_1", family="A", status="PENDING")
    assert server.call("get_work", worker="w1", host="h")["task_id"] == "A_1"
    # the monitor's timer has run a few times (a daemon stopped within its first interval
    # has measured no stall, and so names nothing)
    time.sleep(5 * stalls.INTERVAL)
    assert server.stop() == 0
    line = next(x for x in server.stderr().splitlines() if "Longest event-loop stall since start: " in x)
    assert "; held by " in line  # the trace named (or ruled out) a callback for the longest one


def test_restart_carries_on_with_saved_state(luigids: Callable[..., CliLuigid]) -> None:
    first = luigids().start()
    first.call("add_task", worker="w1", task_id="A_1", family="A", status="DONE")
    first.call("add_task", worker="w1", task_id="B_1", family="B", deps=["A_1"], priority=7)
    assert first.stop() == 0
    second = luigids(state_path=first.state_path).start()
    graph = second.call("graph")
    assert graph["A_1"]["status"] == "DONE"
    assert graph["B_1"]["deps"] == ["A_1"]
    assert graph["B_1"]["priority"] == 7
    assert second.call("get_work", worker="w1", host="h")["task_id"] == "B_1"


def test_foreground_pidfile_written_and_removed(luigids: Callable[..., CliLuigid], tmp_path: Path) -> None:
    pidfile = tmp_path / "run" / "luigid.pid"
    server = luigids("--pidfile", str(pidfile)).start()
    assert pidfile.read_text().strip() == str(server.proc.pid)
    assert server.stop() == 0
    assert not pidfile.exists()


def test_port_in_use_is_one_line_and_exit_3(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        state = str(tmp_path / "s.pickle")
        result = run_luigid(tmp_path, "--address", "127.0.0.1", "--port", str(port), "--state-path", state)
    assert result.returncode == 3
    line = error_line(result.stderr)
    assert str(port) in line and "in use" in line


def test_state_path_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_luigid(tmp_path, "--port", str(free_port()), "--state-path", str(blocker / "state.pickle"))
    assert result.returncode == 3
    line = error_line(result.stderr)
    assert "state path" in line and str(blocker) in line
    assert blocker.read_text() == "not a folder"


def test_bad_config_value_names_the_key(tmp_path: Path) -> None:
    result = run_luigid(
        tmp_path,
        "--port",
        str(free_port()),
        "--state-path",
        str(tmp_path / "s.pickle"),
        config="[scheduler]\nslow_request_seconds = soon\n",
    )
    assert result.returncode == 2
    line = error_line(result.stderr)
    assert "slow_request_seconds" in line and "luigi.test.cfg" in line


def test_second_signal_during_shutdown_exits_right_after_the_save(
    luigids: Callable[..., CliLuigid], tmp_path: Path
) -> None:
    state_path = tmp_path / "big" / "state.pickle"
    state_path.parent.mkdir()
    # a large state makes the final save take long enough to signal again during shutdown
    # (30,000 tasks saved in 0.18 s, and a loaded machine once missed that window)
    scheduler = Scheduler(SchedulerConfig(state_path=str(state_path)))
    for i in range(100_000):
        scheduler.add_task(worker="w", task_id=f"T_{i}", family="T", params={"i": str(i)})
    scheduler.dump()
    pidfile = tmp_path / "luigid.pid"
    server = luigids("--pidfile", str(pidfile), state_path=state_path).start()
    server.call("add_task", worker="w", task_id="Last_1", family="Last")
    server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "shutting down" in server.stderr(), what="shutdown to begin", interval=0.005)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=START_TIMEOUT) == 0
    assert "again" in server.stderr()
    assert "Last_1" in saved_task_ids(state_path)
    assert not pidfile.exists()
