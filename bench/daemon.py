"""Starting, probing and stopping one scheduler daemon process from a command template."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.wire import free_port, try_ping

LUIGI_VERSION = "3.8.1"
# Both daemons get exactly these flags; only the program in front of them differs.
FLAGS = "--port {port} --address 127.0.0.1 --state-path {state} --logdir {logdir}"
LUIGI_TEMPLATE = "{luigi_venv}/bin/luigid " + FLAGS
OURS_TEMPLATE = "{python} -m luigid " + FLAGS
READY_PROBE_WORKER = "bench-readiness-probe"
#: The line our daemon logs at shutdown with its event-loop stall monitor's maximum (luigid.runtime.stalls).
STALL_LINE = re.compile(
    r"Longest event-loop stall since start: ([0-9.]+) ms(?: \(longest on CPU ([0-9.]+) ms)?"
    r"(?:[^\n]*?; held by ([^;\n]*))?(?:; longest on CPU held by ([^;\n]*))?"
)


def front_pids(pid: int) -> list[int]:
    """The HTTP front processes among ``pid``'s children."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"luigid.runtime.front" in cmdline:
            found.append(int(child))
    return found


class DaemonError(Exception):
    """The daemon did not start, answer, or stop as expected."""


def ensure_luigi_venv(venv: Path) -> None:
    """Create ``venv`` with luigi==3.8.1 in it unless it is already there."""
    python = venv / "bin" / "python"
    script = venv / "bin" / "luigid"
    if script.exists() and "luigi.cmdline" not in script.read_text(errors="replace"):
        # e.g. a virtualenv with luigid installed too: its `luigid` is ours, not luigi's
        raise DaemonError(f"{script} is not luigi's own luigid script; pass another --luigi-venv")
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('luigi'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if (
            probe.returncode == 0
            and probe.stdout.strip() == LUIGI_VERSION
            and (venv / "bin" / "luigid").exists()
        ):
            return
    print(f"[bench] installing luigi=={LUIGI_VERSION} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"luigi=={LUIGI_VERSION}"], check=True)


@dataclass
class DaemonSpec:
    name: str  # "luigi" or "ours"
    template: str  # command line with {port} {state} {logdir} (and {python} / {luigi_venv}) placeholders
    #: written to ./luigi.cfg in the daemon's run directory (its working directory) when set
    config: str = ""


class Daemon:
    """One daemon process with its own state directory and log directory under ``rundir``."""

    def __init__(self, spec: DaemonSpec, rundir: Path, luigi_venv: Path) -> None:
        self.spec = spec
        self.rundir = rundir
        self.state_dir = rundir / "state"
        self.logdir = rundir / "log"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.state_dir / "state.pickle"
        self.port = free_port()
        self.argv = shlex.split(
            spec.template.format(
                port=self.port,
                state=self.state_path,
                logdir=self.logdir,
                python=sys.executable,
                luigi_venv=luigi_venv,
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._output = rundir / "daemon-output.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
        if self.spec.config:
            (self.rundir / "luigi.cfg").write_text(self.spec.config)
        with open(self._output, "ab") as out:
            self.started_at = time.perf_counter()
            # cwd is the empty run directory so neither daemon picks up a stray ./luigi.cfg.
            self.proc = subprocess.Popen(
                self.argv, cwd=self.rundir, stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def wait_ready(self, timeout: float) -> float:
        """Seconds from process start to the first answered ping; polls every few milliseconds."""
        assert self.proc is not None
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise DaemonError(
                    f"{self.spec.name} exited with {self.proc.returncode}: {self.output_tail()}"
                )
            if try_ping(
                self.port, READY_PROBE_WORKER, timeout=max(0.5, min(5.0, deadline - time.perf_counter()))
            ):
                return time.perf_counter() - self.started_at
            time.sleep(0.005)
        raise DaemonError(
            f"{self.spec.name} did not answer a ping within {timeout:.0f}s: {self.output_tail()}"
        )

    def front_pids(self) -> list[int]:
        """Our daemon's HTTP front processes ([server] http_processes), children running
        luigid.runtime.front (a snapshot child is not one)."""
        assert self.proc is not None
        return front_pids(self.proc.pid)

    def rss_bytes(self, line: str = "VmRSS") -> int:
        """A size line of /proc/<pid>/status (VmRSS; VmHWM is the peak), in bytes."""
        assert self.proc is not None
        for text in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if text.startswith(f"{line}:"):
                return int(text.split()[1]) * 1024
        raise DaemonError(f"no {line} line in /proc status")

    def children(self) -> list[int]:
        """Pids of the processes the daemon forked (a snapshot writer) that are alive now."""
        assert self.proc is not None
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def state_bytes(self) -> int:
        """Everything the daemon left in its state directory (a journal or side files count too)."""
        return sum(p.stat().st_size for p in self.state_dir.rglob("*") if p.is_file())

    def terminate(self, timeout: float) -> float | None:
        """SIGTERM and wait; seconds until the process is gone, or None if it had to be killed."""
        assert self.proc is not None
        start = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        return time.perf_counter() - start

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logged_stalls(self) -> dict[str, Any]:
        """The longest event-loop stall the daemon logged at its last shutdown, measured inside it,
        and the longest part of one spent on its CPU (ours only: luigi's daemon logs no such line,
        so both are None). Read it before restarting on the same log directory."""
        found: dict[str, Any] = {"loop_stall_max_ms": None, "loop_stall_on_cpu_max_ms": None}
        for log in (self.logdir / "luigi-server.log", self._output):
            try:
                text = log.read_text(errors="replace")
            except OSError:
                continue
            for match in STALL_LINE.finditer(text):
                found["loop_stall_max_ms"] = float(match.group(1))
                found["loop_stall_on_cpu_max_ms"] = float(match.group(2)) if match.group(2) else None
                if match.group(3):  # named by [scheduler] stall_trace (luigid.runtime.loop_trace)
                    found["loop_stall_culprit"] = match.group(3).strip()
                if match.group(4):
                    found["loop_stall_on_cpu_culprit"] = match.group(4).strip()
        return found

    def output_tail(self, chars: int = 600) -> str:
        try:
            return self._output.read_text(errors="replace")[-chars:].strip() or "(no output)"
        except OSError:
            return "(no output file)"
