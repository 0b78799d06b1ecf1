"""``luigid`` run as operators run it: the console script in a real process, on loopback.

The helpers here (``Luigid``, ``free_port``, ``luigid_env``) are shared by the daemon,
persistence and logging tests, which drive the same real command.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from luigid.config import SchedulerConfig
from luigid.scheduler import Scheduler
from luigid.storage import codec
from tests.processes import free_port
from tests.processes import wait_for as shared_wait_for

LUIGID = str(Path(sys.executable).with_name("luigid"))
#: generous: the suite shares a small machine with other work
START_TIMEOUT = 60.0


def wait_for(predicate: Any, timeout: float = START_TIMEOUT, what: str = "condition") -> None:
    shared_wait_for(predicate, timeout, what)


def luigid_env(tmp_path: Path, config: str = "", syntax: str = "cfg") -> dict[str, str]:
    """An environment that reads only ``config`` (written to a file under ``tmp_path``);
    ``syntax`` is "cfg" or "toml"."""
    cfg = tmp_path / f"luigi.test.{syntax}"
    cfg.write_text(config)
    env = dict(os.environ)
    env.update(LUIGI_CONFIG_PATH=str(cfg), LUIGI_CONFIG_PARSER=syntax, HOME=str(tmp_path))
    return env


def run_luigid(tmp_path: Path, *args: str, config: str = "", timeout: float = START_TIMEOUT):
    """Run luigid to completion (a failed start, or a --background launch)."""
    return subprocess.run(
        [LUIGID, *args],
        cwd=tmp_path,
        env=luigid_env(tmp_path, config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def call(port: int, method: str, timeout: float = 30, **data: Any) -> Any:
    reply = requests.post(
        f"http://127.0.0.1:{port}/api/{method}", data={"data": json.dumps(data)}, timeout=timeout
    )
    reply.raise_for_status()
    return reply.json()["response"]


def listening(port: int) -> bool:
    try:
        requests.head(f"http://127.0.0.1:{port}/", timeout=2)
        return True
    except requests.ConnectionError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; it only waits to be reaped by its parent
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


class Luigid:
    """A foreground luigid process on a free loopback port."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        config: str = "",
        state_path: Path | None = None,
        port: int | None = None,
        syntax: str = "cfg",
    ):
        self.tmp_path = tmp_path
        self.port = port or free_port()
        self.state_path = state_path or tmp_path / "state" / "state.pickle"
        self.stderr_path = tmp_path / f"luigid-{self.port}.stderr"
        self.args = [
            LUIGID,
            "--address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state-path",
            str(self.state_path),
            *args,
        ]
        self.env = luigid_env(tmp_path, config, syntax)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Luigid:
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                self.args, cwd=self.tmp_path, env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
        if wait:
            wait_for(self._up, what=f"luigid on port {self.port}")
        return self

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"luigid exited with {self.proc.returncode}: {self.stderr()}")
        return listening(self.port)

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def call(self, method: str, **data: Any) -> Any:
        return call(self.port, method, **data)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = START_TIMEOUT) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def luigid_factory(tmp_path: Path) -> Iterator[Callable[..., Luigid]]:
    """Body of the ``luigids`` fixtures: make ``Luigid`` processes, kill leftovers at the end."""
    made: list[Luigid] = []

    def make(*args: str, **kwargs: Any) -> Luigid:
        server = Luigid(tmp_path, *args, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


@pytest.fixture
def luigids(tmp_path: Path):
    yield from luigid_factory(tmp_path)


def error_line(text: str) -> str:
    """The one ``luigid:`` error line on stderr (log lines may surround it; no traceback)."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("luigid:")]
    assert len(lines) == 1, f"expected one error line, got: {text!r}"
    return lines[0]


def saved_task_ids(path: Path) -> set[str]:
    """Task ids in the state file (read only: a running server's snapshot is not disturbed)."""
    tasks, _, _ = codec.decode(path.read_bytes(), SchedulerConfig().retry_policy())
    return set(tasks)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_signal_saves_state_once_and_exits_zero(luigids, sig):
    server = luigids().start()
    server.call("add_task", worker="w1", task_id="A_1", family="A", status="PENDING")
    assert server.stop(sig) == 0
    assert saved_task_ids(server.state_path) == {"A_1"}
    assert server.stderr().count("Saved state in") == 1


def test_longest_event_loop_stall_is_logged_at_shutdown_and_scraped(luigids):
    server = luigids(config="[scheduler]\nmetrics_collector = prometheus\n").start()
    server.call("ping", worker="w1")
    metrics = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    assert "luigid_event_loop_longest_stall_seconds " in metrics
    assert server.stop() == 0
    log = server.stderr()
    assert log.count("Longest event-loop stall since start: ") == 1
    # measured up to the final save, which blocks on purpose and is left out
    assert log.index("Longest event-loop stall") < log.index("Saved state in")


def test_restart_carries_on_with_saved_state(luigids):
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


def test_foreground_pidfile_written_and_removed(luigids, tmp_path):
    pidfile = tmp_path / "run" / "luigid.pid"
    server = luigids("--pidfile", str(pidfile)).start()
    assert pidfile.read_text().strip() == str(server.proc.pid)
    assert server.stop() == 0
    assert not pidfile.exists()


def test_port_in_use_is_one_line_and_exit_3(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        state = str(tmp_path / "s.pickle")
        result = run_luigid(tmp_path, "--address", "127.0.0.1", "--port", str(port), "--state-path", state)
    assert result.returncode == 3
    line = error_line(result.stderr)
    assert str(port) in line and "in use" in line


def test_state_path_under_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_luigid(tmp_path, "--port", str(free_port()), "--state-path", str(blocker / "state.pickle"))
    assert result.returncode == 3
    line = error_line(result.stderr)
    assert "state path" in line and str(blocker) in line
    assert blocker.read_text() == "not a folder"


def test_bad_config_value_names_the_key(tmp_path):
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


def test_second_signal_during_shutdown_exits_right_after_the_save(luigids, tmp_path):
    state_path = tmp_path / "big" / "state.pickle"
    state_path.parent.mkdir()
    # a large state makes the final save take long enough to signal again during shutdown
    scheduler = Scheduler(SchedulerConfig(state_path=str(state_path)))
    for i in range(30_000):
        scheduler.add_task(worker="w", task_id=f"T_{i}", family="T", params={"i": str(i)})
    scheduler.dump()
    pidfile = tmp_path / "luigid.pid"
    server = luigids("--pidfile", str(pidfile), state_path=state_path).start()
    server.call("add_task", worker="w", task_id="Last_1", family="Last")
    server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "shutting down" in server.stderr(), what="shutdown to begin")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=START_TIMEOUT) == 0
    assert "again" in server.stderr()
    assert "Last_1" in saved_task_ids(state_path)
    assert not pidfile.exists()
