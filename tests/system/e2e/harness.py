"""The real daemon process and real luigi workers as subprocesses: what the e2e fixtures hand out.

The daemon command defaults to the ``luigid`` console script installed next to ``sys.executable``
(which must be ours: its ``--version`` names luigid). ``LUIGID_E2E_CMD`` overrides it with any
command prefix, e.g. ``LUIGID_E2E_CMD='python -c "import luigi.cmdline as c; c.luigid()"'`` to run
the same suite against luigi's own daemon; luigi's flags are appended to it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import Luigid
from tests.support.daemon import tail
from tests.support.luigi_cfg import cfg_text, write_cfg

from .journal import WORKDIR_ENV, read_journal

E2E_DIR = Path(__file__).resolve().parent
CMD_ENV = "LUIGID_E2E_CMD"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
WORKER_TIMEOUT = 60.0

# Exit codes for the luigi CLI so a worker's status says what happened (luigi's defaults are all 0).
RETCODES = {
    "missing_data": 20,
    "not_run": 25,
    "task_failed": 30,
    "scheduling_error": 35,
    "unhandled_exception": 40,
}
RUN_BY_OTHER_WORKER = 0  # [retcode] already_running: a worker sharing a DAG may see its root run elsewhere


@dataclass
class DaemonCommand:
    argv: list[str]
    is_ours: bool
    why_not_ours: str = ""


def probe_version(argv: list[str]) -> tuple[int, str]:
    proc = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


class Daemon(Luigid):
    """One luigid process (restartable on the same port, state path and config), its config
    given as sections, its logs in ``home/logs`` and its output in a file per start."""

    def __init__(
        self, command: DaemonCommand, home: Path, config: dict[str, dict[str, Any]], unix_socket: str | None
    ) -> None:
        super().__init__(
            home,
            cfg_text(config),
            "--logdir",
            str(home / "logs"),
            unix_socket=unix_socket,
            command=command.argv,
            log_name="stderr.{n}.txt",
        )

    @property
    def logdir(self) -> Path:
        return self.workdir / "logs"

    @property
    def scheduler_args(self) -> list[str]:
        """luigi CLI flags that point a worker at this daemon."""
        if self.unix_socket:
            return ["--scheduler-url", f"http+unix://{urllib.parse.quote(self.unix_socket, safe='')}"]
        return ["--scheduler-host", "127.0.0.1", "--scheduler-port", str(self.port)]

    def start(self, wait: bool = True, timeout: float = STARTUP_TIMEOUT) -> Daemon:
        self.logdir.mkdir(parents=True, exist_ok=True)
        return super().start(wait, timeout)

    def api(self, method: str, **arguments: Any) -> Any:
        """Call an RPC method the way a client does (form-encoded ``data=<json>``) and unwrap the reply."""
        conn = self.connection()
        try:
            body = urllib.parse.urlencode({"data": json.dumps(arguments)})
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            conn.request("POST", f"/api/{method}", body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read().decode()
            assert resp.status == 200, f"/api/{method} answered {resp.status}: {payload}"
            return json.loads(payload)["response"]
        finally:
            conn.close()

    def task_list(self, status: str) -> list[dict[str, Any]]:
        """Every task the daemon has in ``status``, as task_list serializes it."""
        return list(self.api("task_list", status=status, upstream_status="").values())

    def param_values(self, status: str, family: str, param: str) -> list[str]:
        """Sorted values of ``param`` over the ``family`` tasks in ``status``."""
        return sorted(task["params"][param] for task in self.task_list(status) if task["name"] == family)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT, strict: bool = True) -> int:
        """Signal the daemon and wait for it to exit (failing if it has to be killed); its exit status."""
        return super().stop(sig, timeout, strict)

    def output(self) -> str:
        parts = []
        for path in self.log_paths:
            if path.exists():
                parts.append(f"--- {path.name} ---\n{tail(path.read_text(errors='replace'))}")
        for path in sorted(self.logdir.glob("*")) if self.logdir.exists() else []:
            parts.append(f"--- {path.name} ---\n{tail(path.read_text(errors='replace'))}")
        return "\n".join(parts)


def short_tmpdir(prefix: str) -> Path:
    # A Unix socket path must fit in ~104 bytes, which pytest's tmp_path may not.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@dataclass
class WorkerRun:
    """A luigi CLI process: its exit status and everything it printed."""

    argv: list[str]
    proc: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout: float = WORKER_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            command = shlex.join(self.argv)
            pytest.fail(f"luigi worker still running after {timeout:.0f}s: {command}\n{tail(self.output())}")

    def expect(self, *codes: int, timeout: float = WORKER_TIMEOUT) -> None:
        code = self.wait(timeout)
        assert code in codes, (
            f"luigi exited {code}, expected {codes}: {shlex.join(self.argv)}\n{tail(self.output())}"
        )


@dataclass
class Workspace:
    """Where one test's tasks write outputs and journal facts, and how to launch workers there."""

    root: Path
    runs: list[WorkerRun] = field(default_factory=list)

    def worker_config(self, extra: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
        config: dict[str, dict[str, Any]] = {
            # Ride through a daemon restart: up to a minute of failed calls, one second apart.
            "core": {
                "rpc_retry_attempts": 60,
                "rpc_retry_wait": 1,
                "rpc_connect_timeout": 5,
                "no_lock": True,
                "autoload_range": False,
            },
            "worker": {"keep_alive": True, "wait_interval": 0.1, "wait_jitter": 0.1, "ping_interval": 0.5},
            "retcode": dict(RETCODES, already_running=RUN_BY_OTHER_WORKER),
        }
        for section, keys in (extra or {}).items():
            config.setdefault(section, {}).update(keys)
        return config

    def start(
        self,
        daemon: Daemon,
        *task_args: str,
        workers: int = 1,
        config: dict[str, dict[str, Any]] | None = None,
    ) -> WorkerRun:
        """Launch ``luigi --module pipelines <task_args>`` against ``daemon`` (not waiting for it)."""
        index = len(self.runs)
        cfg = write_cfg(self.root / f"worker{index}.cfg", self.worker_config(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_CONFIG")}
        env["LUIGI_CONFIG_PATH"] = str(cfg)
        env[WORKDIR_ENV] = str(self.root)
        # The task modules (pipelines, journal, shapes) import as top-level modules in the worker.
        env["PYTHONPATH"] = os.pathsep.join([str(E2E_DIR), *filter(None, [env.get("PYTHONPATH")])])
        argv = [sys.executable, "-m", "luigi", "--module", "pipelines", *task_args, *daemon.scheduler_args]
        argv += ["--workers", str(workers), "--no-lock"]
        log_path = self.root / f"worker{index}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        run = WorkerRun(argv, proc, log_path)
        self.runs.append(run)
        return run

    def run(self, daemon: Daemon, *task_args: str, **kwargs: Any) -> WorkerRun:
        """Run a worker to completion and require success."""
        run = self.start(daemon, *task_args, **kwargs)
        run.expect(0)
        return run

    def journal(self) -> list[dict[str, Any]]:
        return read_journal(self.root)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [fact for fact in self.journal() if fact["event"] == event]

    def count(self, event: str) -> Counter[str]:
        """How many times each task recorded ``event`` (e.g. ``end``: how many times it ran)."""
        return Counter(fact["task"] for fact in self.events(event))
