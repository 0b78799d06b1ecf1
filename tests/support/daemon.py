"""A real ``luigid`` process (the console script) configured as an operator would: a config
file through LUIGI_CONFIG_PATH, its own state file and working folder, a free loopback port
(or a Unix socket); started, waited for, stopped with SIGTERM (killed only if it hangs)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from tests.support.wait import wait_for

L = TypeVar("L", bound="Luigid")

#: generous: the suite shares a small machine with other work
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def luigid_command() -> list[str]:
    """The console script next to this interpreter (``python -m luigid`` if there is none)."""
    script = Path(sys.executable).with_name("luigid")
    return [str(script)] if script.exists() else [sys.executable, "-m", "luigid"]


def clean_env(config_path: Path) -> dict[str, str]:
    """This process's environment, reading luigi's config from ``config_path`` only (any
    LUIGI_CONFIG_* of the caller's is dropped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_CONFIG")}
    env["LUIGI_CONFIG_PATH"] = str(config_path)
    return env


def tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class Luigid:
    """One luigid process, restartable on the same port, state path and config.

    ``config`` is written to ``workdir/config_name``; ``args`` follow the address, port and
    state-path flags. Each start's stdout and stderr go to ``workdir/log_name`` (appended), or
    to a file per start when ``log_name`` holds ``{n}``. ``env`` adds to (or, with
    ``inherit_env=False``, replaces) the environment; ``prefix`` goes before the command
    (e.g. to run it as another user); ``default_state_path`` leaves --state-path out.
    """

    def __init__(
        self,
        workdir: Path,
        config: str = "",
        *args: str,
        port: int | None = None,
        unix_socket: str | None = None,
        state_path: Path | None = None,
        default_state_path: bool = False,
        address: str = "127.0.0.1",
        command: Sequence[str] | None = None,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        config_name: str = "luigi.cfg",
        log_name: str = "luigid.log",
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.args = list(args)
        self.unix_socket = unix_socket
        self.port = 0 if unix_socket else (free_port() if port is None else port)
        self.state_path = state_path or workdir / "state.pickle"
        self.default_state_path = default_state_path
        self.address = address
        self.command = list(command) if command is not None else luigid_command()
        self.prefix = list(prefix)
        self.extra_env = dict(env or {})
        self.inherit_env = inherit_env
        self.config_path = workdir / config_name
        self.log_name = log_name
        self.log_paths: list[Path] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        """The process of the latest start."""
        assert self._proc is not None, "luigid was never started"
        return self._proc

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, user: str | None = None, password: str | None = None) -> str:
        if user is None:
            return self.base
        return f"http://{user}:{password}@127.0.0.1:{self.port}/"

    def argv(self) -> list[str]:
        argv = [*self.prefix, *self.command]
        if self.unix_socket:
            argv += ["--unix-socket", self.unix_socket]
        else:
            if self.address:
                argv += ["--address", self.address]
            argv += ["--port", str(self.port)]
        if not self.default_state_path:
            argv += ["--state-path", str(self.state_path)]
        return [*argv, *self.args]

    def environment(self) -> dict[str, str]:
        if not self.inherit_env:
            return dict(self.extra_env)
        env = clean_env(self.config_path)
        env.update(self.extra_env)
        return env

    def start(self: L, wait: bool = True, timeout: float = START_TIMEOUT) -> L:
        """Launch; with ``wait``, return once it answers (failing with its log if it exits)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config)
        self.starts += 1
        log_path = self.workdir / self.log_name.format(n=self.starts)
        self.log_paths.append(log_path)
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.argv(),
                cwd=self.workdir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_for(self.answers, timeout, f"luigid to answer HEAD / ({' '.join(self.argv())})")

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        if self.unix_socket:
            return _UnixHTTPConnection(self.unix_socket, timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def answers(self) -> bool:
        """HEAD / (the health check, open even with authentication on) answers."""
        if self.proc.poll() is not None:
            raise AssertionError(f"luigid exited with {self.proc.returncode}:\n{tail(self.log)}")
        conn = self.connection(timeout=2.0)
        try:
            conn.request("HEAD", "/")
            return conn.getresponse().status < 500
        except OSError:
            return False
        finally:
            conn.close()

    @property
    def log(self) -> str:
        """Everything the current start has printed."""
        if not self.log_paths or not self.log_paths[-1].exists():
            return ""
        return self.log_paths[-1].read_text(errors="replace")

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT, strict: bool = False) -> int:
        """Send ``sig`` and wait; kill if it outlives ``timeout`` (failing if ``strict``). The exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if strict:
                    raise AssertionError(
                        f"luigid did not exit within {timeout:.0f}s of signal {sig}:\n{tail(self.log)}"
                    ) from None
        return self.proc.returncode

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for it to exit on its own; the exit status."""
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def stop_all(*daemons: Luigid) -> None:
    for daemon in daemons:
        if daemon.running():
            with contextlib.suppress(Exception):
                daemon.stop()
