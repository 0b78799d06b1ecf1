"""A real ``luigid`` process (the console script) on a free loopback port, configured
through LUIGI_CONFIG_PATH like an operator would."""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.processes import free_port, luigid_command, terminate, wait_for


@dataclass
class Daemon:
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, user: str | None = None, password: str | None = None) -> str:
        if user is None:
            return self.base
        return f"http://{user}:{password}@127.0.0.1:{self.port}/"

    @property
    def log(self) -> str:
        return (self.workdir / "luigid.log").read_text(errors="replace")

    def stop(self) -> None:
        terminate(self.proc)


def write_config(workdir: Path, config: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "luigi.cfg"
    cfg.write_text(config)
    return cfg


def launch(workdir: Path, config: str, *extra: str, address: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """Start luigid (not waiting for it); its output goes to workdir/luigid.log."""
    cfg = write_config(workdir, config)
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(cfg))
    log = open(workdir / "luigid.log", "wb")  # noqa: SIM115 (lives as long as the process)
    args = [*luigid_command(), "--state-path", str(workdir / "state.pickle"), *extra]
    if address:
        args += ["--address", address]
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env)


def start_luigid(workdir: Path, config: str) -> Daemon:
    port = free_port()
    proc = launch(workdir, config, "--port", str(port))
    daemon = Daemon(port, proc, workdir)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"luigid exited: {daemon.log}")
        try:
            # HEAD / is the health check: open even with authentication on
            return requests.head(daemon.base, timeout=2).status_code == 204
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, what="luigid to answer")
    except BaseException:
        daemon.stop()
        raise
    return daemon


def stop_all(*daemons: Daemon) -> None:
    for daemon in daemons:
        with contextlib.suppress(Exception):
            daemon.stop()
