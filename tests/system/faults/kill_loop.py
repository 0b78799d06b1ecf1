"""kill -9 luigid again and again while real luigi workers run fault_dag's DAG.

The daemon restarts each time on the same --state-path and port. Before each kill and right
after each restart the harness asks task_list what the daemon knows, so the report can say what
every restart lost. Run records written by the tasks themselves tell what really ran.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.daemon import OURS_TEMPLATE, Daemon, DaemonSpec
from bench.wire import RpcClient, RpcError
from tests.support.luigi_cfg import riding_through_restarts, write_cfg

HERE = Path(__file__).resolve().parent


DAEMON_CONFIG = """\
[scheduler]
state_snapshot_interval = {snapshot_interval}
retry_delay = 5
"""


@dataclass
class Kill:
    at: float  # seconds since the workers started
    known_before: dict[str, int]  # task_list counts by status just before the kill
    known_after: dict[str, int]  # the first answer after the restart
    down_seconds: float  # from SIGKILL until the new daemon answered a ping


@dataclass
class Outcome:
    kills: list[Kill] = field(default_factory=list)
    worker_exit_codes: list[int] = field(default_factory=list)
    worker_reports: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outputs: int = 0
    seconds: float = 0.0
    final_counts: dict[str, int] = field(default_factory=dict)
    started: float = 0.0  # epoch seconds; run records carry epoch times

    def starts(self, task_id: str) -> list[dict[str, Any]]:
        return [r for r in self.runs.get(task_id, []) if r["event"] == "start"]

    def reruns_over_output(self) -> list[str]:
        """Tasks started although their output was already there: the double runs that matter."""
        return sorted(t for t in self.runs if any(r["output_existed"] for r in self.starts(t)))

    def overlapping_runs(self) -> list[str]:
        """Tasks started twice before either run wrote its output (two workers at once)."""
        return sorted(t for t in self.runs if sum(not r["output_existed"] for r in self.starts(t)) > 1)

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "kills": [asdict(k) for k in self.kills],
            "worker_exit_codes": self.worker_exit_codes,
            "worker_rounds": [len(r.get("rounds", [])) for r in self.worker_reports],
            "tasks_with_output": self.outputs,
            "runs": sum(len(self.starts(t)) for t in self.runs),
            "reruns_over_output": self.reruns_over_output(),
            "overlapping_runs": self.overlapping_runs(),
            "final_counts": self.final_counts,
            # each start of a task run more than once, seconds since the workers started
            "duplicate_runs": {
                t: [{**r, "at": round(r["at"] - self.started, 2)} for r in self.starts(t)]
                for t in self.runs
                if len(self.starts(t)) > 1
            },
        }


def task_statuses(port: int) -> dict[str, str]:
    """Every task the daemon knows, with its status."""
    client = RpcClient(port, timeout=30)
    try:
        listing = client.call("task_list", {"status": "", "upstream_status": "", "search": ""})
    finally:
        client.close()
    return {task_id: task["status"] for task_id, task in listing.items()}


def task_counts(port: int) -> dict[str, int]:
    return dict(Counter(task_statuses(port).values()))


class KillLoop:
    def __init__(self, workdir: Path, n_workers: int, snapshot_interval: float) -> None:
        self.workdir = workdir
        self.n_workers = n_workers
        for sub in ("runs", "out", "workers", "daemon"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        daemon_cfg = DAEMON_CONFIG.format(snapshot_interval=snapshot_interval)
        (workdir / "daemon" / "luigi.cfg").write_text(daemon_cfg)
        # LUIGID_FAULT_DAEMON_CMD runs another daemon (e.g. luigi's), same placeholders as bench/daemon.py
        template = os.environ.get("LUIGID_FAULT_DAEMON_CMD", OURS_TEMPLATE)
        self.daemon = Daemon(DaemonSpec("luigid", template), workdir / "daemon", workdir)
        write_cfg(
            workdir / "worker.cfg",
            riding_through_restarts(
                self.daemon.port, max_keep_alive_idle_duration=10, wait_interval=0.5, wait_jitter=0.5
            ),
        )

    def start_workers(
        self, count: int, *args: str, script: str = "fault_worker.py", log_prefix: str = "worker"
    ) -> list[subprocess.Popen[bytes]]:
        """``count`` processes running ``script`` with ``args``, logging to ``<log_prefix>-<n>.log``."""
        env = dict(os.environ, LUIGI_CONFIG_PATH=str(self.workdir / "worker.cfg"))
        env["LUIGID_FAULT_DIR"] = str(self.workdir)
        procs = []
        for n in range(count):
            with open(self.workdir / f"{log_prefix}-{n}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, str(HERE / script), *args],
                        cwd=self.workdir,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        return procs

    def _restart(self) -> float:
        killed_at = time.monotonic()
        self.daemon.kill()  # SIGKILL: no chance to save anything
        time.sleep(random.uniform(0.0, 0.5))
        self.daemon.start()
        self.daemon.wait_ready(60)
        return time.monotonic() - killed_at

    def run(self, seconds: float, max_kills: int, gap: tuple[float, float]) -> Outcome:
        outcome = Outcome()
        started = outcome.started = time.time()
        deadline = started + seconds
        self.daemon.start()
        self.daemon.wait_ready(60)
        procs = self.start_workers(self.n_workers, str(deadline))
        try:
            for _ in range(max_kills):
                time.sleep(random.uniform(*gap))
                if all(p.poll() is not None for p in procs) or time.time() > deadline:
                    break
                try:
                    before = task_counts(self.daemon.port)
                except RpcError:
                    before = {}
                at = time.time() - started
                down = self._restart()
                try:
                    after = task_counts(self.daemon.port)
                except RpcError:
                    after = {}
                outcome.kills.append(Kill(round(at, 1), before, after, round(down, 2)))
            for proc in procs:
                try:
                    proc.wait(max(1.0, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            outcome.final_counts = task_counts(self.daemon.port)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if self.daemon.proc is not None and self.daemon.proc.poll() is None:
                self.daemon.terminate(30)
        outcome.seconds = time.time() - started
        outcome.worker_exit_codes = [p.returncode for p in procs]
        self.read_records(outcome)
        return outcome

    def read_records(self, outcome: Outcome) -> None:
        """What the workers reported and what the tasks recorded of their runs, into ``outcome``."""
        for report in sorted((self.workdir / "workers").glob("*.json")):
            outcome.worker_reports.append(json.loads(report.read_text()))
        for path in (self.workdir / "runs").iterdir():
            outcome.runs[path.name] = [json.loads(line) for line in path.read_text().splitlines()]
        outcome.outputs = sum(1 for _ in (self.workdir / "out").iterdir())

    def log_tail(self, chars: int = 1500) -> str:
        parts = [f"daemon: {self.daemon.output_tail(chars)}"]
        for log in sorted(self.workdir.glob("worker-*.log")):
            parts.append(f"{log.name}: {log.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)
