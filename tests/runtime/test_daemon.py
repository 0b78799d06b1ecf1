"""``luigid --background``: detaching, the pidfile, log files, and start-up failures
reported by the launching process."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.daemon import front_pids
from tests.support import free_port, wait_for
from tests.support.cli import call, error_line, listening, pid_alive, run_luigid, saved_task_ids


class Background:
    """Paths and flags of one background luigid, and a way to launch it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.pidfile = tmp_path / "run" / "luigid" / "luigid.pid"
        self.logdir = tmp_path / "log"
        self.state_path = tmp_path / "state" / "state.pickle"
        self.pids: list[int] = []

    def launch(
        self, *extra: str, port: int | None = None, config: str = ""
    ) -> subprocess.CompletedProcess[str]:
        result = run_luigid(
            self.tmp_path,
            "--background",
            "--pidfile",
            str(self.pidfile),
            "--logdir",
            str(self.logdir),
            "--state-path",
            str(self.state_path),
            "--address",
            "127.0.0.1",
            "--port",
            str(port or self.port),
            *extra,
            config=config,
        )
        if result.returncode == 0 and self.pidfile.exists():
            self.pids.append(self.pid())
        return result

    def pid(self) -> int:
        return int(self.pidfile.read_text())

    def stop(self, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), what=f"daemon {pid} to exit")

    def cleanup(self) -> None:
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def bg(tmp_path: Path) -> Iterator[Background]:
    daemon = Background(tmp_path)
    yield daemon
    daemon.cleanup()


def test_start_detaches_and_listens_before_the_launcher_returns(bg: Background) -> None:
    result = bg.launch()
    assert result.returncode == 0, result.stderr
    # no waiting: exit status 0 means the daemon already listens
    assert listening(bg.port)
    pid = bg.pid()
    assert pid_alive(pid)
    call(bg.port, "add_task", worker="w1", task_id="A_1", family="A")

    assert stat.S_IMODE(bg.pidfile.stat().st_mode) == 0o644
    for folder in (bg.pidfile.parent, bg.pidfile.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o022 == 0, oct(folder.stat().st_mode)

    today = f"{datetime.date.today():%Y-%m-%d}"
    assert (bg.logdir / f"luigi-server-{today}.out").exists()
    assert (bg.logdir / f"luigi-server-{today}.err").exists()
    log = (bg.logdir / "luigi-server.log").read_text()
    assert "Scheduler starting up" in log

    bg.stop(pid)
    assert not bg.pidfile.exists()
    assert saved_task_ids(bg.state_path) == {"A_1"}
    assert "Saved state in" in (bg.logdir / "luigi-server.log").read_text()


def test_second_start_is_refused_before_detaching(bg: Background) -> None:
    assert bg.launch().returncode == 0
    pid = bg.pid()
    again = bg.launch(port=free_port())
    assert again.returncode != 0
    line = error_line(again.stderr)
    assert "already running" in line and str(pid) in line
    assert bg.pid() == pid and pid_alive(pid)
    bg.stop(pid)


def test_stale_pidfile_of_a_dead_process_is_replaced(bg: Background) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    bg.pidfile.parent.mkdir(parents=True)
    bg.pidfile.write_text(f"{gone.pid}\n")
    result = bg.launch()
    assert result.returncode == 0, result.stderr
    assert bg.pid() != gone.pid and pid_alive(bg.pid())
    bg.stop(bg.pid())
    assert not bg.pidfile.exists()


def test_pidfile_naming_another_program_is_stale(bg: Background) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        bg.pidfile.parent.mkdir(parents=True)
        bg.pidfile.write_text(f"{other.pid}\n")
        result = bg.launch()
        assert result.returncode == 0, result.stderr
        assert bg.pid() != other.pid
        bg.stop(bg.pid())
        assert other.poll() is None  # the unrelated program was left alone
    finally:
        other.kill()
        other.wait()


def test_port_in_use_is_reported_by_the_launcher(bg: Background) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = bg.launch(port=taken.getsockname()[1])
    assert result.returncode == 3
    line = error_line(result.stderr)
    assert "in use" in line
    assert not bg.pidfile.exists()


def test_unwritable_state_path_is_reported_by_the_launcher(bg: Background, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    bg.state_path = blocker / "state.pickle"
    result = bg.launch()
    assert result.returncode == 3
    assert "state path" in error_line(result.stderr)
    assert not bg.pidfile.exists()


def test_bad_config_is_reported_before_detaching(bg: Background) -> None:
    result = bg.launch(config="[scheduler]\nretry_delay = later\n")
    assert result.returncode == 2
    assert "retry_delay" in error_line(result.stderr)
    assert not bg.logdir.exists()  # refused before anything was set up


def test_bad_logging_config_is_reported_by_the_launcher(bg: Background, tmp_path: Path) -> None:
    result = bg.launch(config=f"[core]\nlogging_conf_file = {tmp_path / 'missing.conf'}\n")
    assert result.returncode == 2
    assert "logging_conf_file" in error_line(result.stderr)


def test_with_front_processes_the_pidfile_names_the_scheduler_process(bg: Background) -> None:
    result = bg.launch(config="[server]\nhttp_processes = 2\n")
    assert result.returncode == 0, result.stderr
    pid = bg.pid()
    wait_for(lambda: len(front_pids(pid)) == 2, what="two front processes")
    fronts = front_pids(pid)
    call(bg.port, "add_task", worker="w1", task_id="A_1", family="A")
    log = (bg.logdir / "luigi-server.log").read_text()
    assert "HTTP parsed by 2 front processes" in log
    bg.stop(pid)  # SIGTERM to the pidfile's process stops the fronts too
    wait_for(lambda: not any(pid_alive(front) for front in fronts), what="the fronts to exit")
    assert not bg.pidfile.exists()
    assert saved_task_ids(bg.state_path) == {"A_1"}
