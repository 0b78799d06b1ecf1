"""``luigid`` run as operators run it, for the command-line, daemon, persistence and logging
tests: the console script in a real process on loopback, configured through a file under the
test's ``tmp_path`` (also its HOME)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from luigid.config import SchedulerConfig
from luigid.storage import codec
from tests.support import daemon
from tests.support.daemon import START_TIMEOUT, free_port, luigid_command

LUIGID = str(Path(sys.executable).with_name("luigid"))


def luigid_env(tmp_path: Path, config: str = "", syntax: str = "cfg") -> dict[str, str]:
    """An environment that reads only ``config`` (written to a file under ``tmp_path``);
    ``syntax`` is "cfg" or "toml"."""
    cfg = tmp_path / f"luigi.test.{syntax}"
    cfg.write_text(config)
    env = dict(os.environ)
    env.update(LUIGI_CONFIG_PATH=str(cfg), LUIGI_CONFIG_PARSER=syntax, HOME=str(tmp_path))
    return env


def run_luigid(
    tmp_path: Path, *args: str, config: str = "", timeout: float = START_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run luigid to completion (a failed start, or a --background launch)."""
    return subprocess.run(
        [LUIGID, *args],
        cwd=tmp_path,
        env=luigid_env(tmp_path, config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def luigid_tool(
    *args: str, stdin: str = "", cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``luigid <args>`` run to completion as an operator types it (``luigid user ...``,
    ``luigid state ...``), with this process's environment unless ``env`` is given."""
    return subprocess.run(
        [*luigid_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        cwd=cwd,
        env=env,
    )


def call(port: int, method: str, timeout: float = 30, **data: Any) -> Any:
    """One RPC to the luigid on ``port`` as luigi's client sends it; its response (it must answer 200)."""
    reply = requests.post(
        f"http://127.0.0.1:{port}/api/{method}", data={"data": json.dumps(data)}, timeout=timeout
    )
    assert reply.status_code == 200, reply.text
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


class CliLuigid(daemon.Luigid):
    """A foreground luigid on a free loopback port, configured through ``luigid_env``'s way:
    ``luigi.test.<syntax>`` under ``tmp_path``, which is also HOME."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        config: str = "",
        state_path: Path | None = None,
        port: int | None = None,
        syntax: str = "cfg",
    ) -> None:
        port = port or free_port()
        super().__init__(
            tmp_path,
            config,
            *args,
            port=port,
            state_path=state_path or tmp_path / "state" / "state.pickle",
            env={"LUIGI_CONFIG_PARSER": syntax, "HOME": str(tmp_path)},
            config_name=f"luigi.test.{syntax}",
            log_name=f"luigid-{port}.stderr",
        )

    def stderr(self) -> str:
        return self.log

    def call(self, method: str, **data: Any) -> Any:
        return call(self.port, method, **data)


def luigid_factory(tmp_path: Path) -> Iterator[Callable[..., CliLuigid]]:
    """Body of the ``luigids`` fixtures: make ``CliLuigid`` processes, kill leftovers at the end."""
    made: list[CliLuigid] = []

    def make(*args: str, **kwargs: Any) -> CliLuigid:
        server = CliLuigid(tmp_path, *args, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        if server.running():
            server.kill()


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
