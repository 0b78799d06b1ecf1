"""Load and soak test: many simulated luigi workers against one luigid for a set time.

    python bench/soak.py --workers 200 --seconds 300

Starts luigid on a free loopback port with short [scheduler] worker_disconnect_delay and
remove_delay (so pruning runs all the time), drives it from a few processes of asyncio workers
(see bench/soak_load.py) plus a web-UI poller whose reads make the daemon prune as luigi's do,
samples the daemon's VmRSS and the size of its change log (snapshots every few seconds, so the
log is truncated many times), then prints requests/s, p50/p99 per method, errors, RSS and the
change log's size over time.
Exit status 0 when the run passes (rules in bench/soak_verdict.py and docs/reliability.md).
Not part of the test suite; tests/system/soak/ runs a short version of ``run_soak``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import OURS_TEMPLATE, Daemon, DaemonError, DaemonSpec
from bench.soak_changelog import ChangeLogSample, changelog_figures, sample_changelog, state_changing_calls
from bench.soak_load import LoadPlan, LoadStats, run_load_process
from bench.soak_verdict import MethodFigures, Verdict, judge, merge, method_figures, report_lines
from bench.wire import try_ping
from bench.workload import PIPELINE_SIZE

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SoakOptions:
    workers: int = 200
    seconds: float = 300.0
    processes: int = 2  # load processes; the daemon gets the other core
    task_seconds: float = 0.5
    pipelines_per_worker: int = 1
    fail_rate: float = 0.03
    crash_rate: float = 0.1
    ping_interval: float = 1.0  # luigi's [worker] ping_interval default
    rejoin_seconds: float = 1.0
    ramp_seconds: float = 3.0
    viewer_interval: float = 2.0
    worker_disconnect_delay: float = 5.0
    remove_delay: float = 5.0
    retry_delay: float = 5.0
    rss_interval: float = 0.5
    rss_tolerance: float = 0.05
    snapshot_interval: float = 10.0  # [scheduler] state_snapshot_interval; 0: no change log to check
    snapshot_slack: float = 3.0  # seconds a snapshot may take past its interval (soak_changelog.py)
    timeout: float = 30.0
    daemon_cmd: str = OURS_TEMPLATE
    keep_dir: bool = False

    def settle_seconds(self) -> float:
        """Rough time until the first workers' tasks are pruned: join, run, time out, remove."""
        life = self.pipelines_per_worker * PIPELINE_SIZE * (self.task_seconds + 0.02)
        return self.ramp_seconds + life + self.worker_disconnect_delay + self.remove_delay


@dataclass
class SoakResult:
    verdict: Verdict
    figures: list[MethodFigures]
    stats: LoadStats
    rss: list[tuple[float, int]]
    changelog: list[ChangeLogSample]
    start: float
    end: float
    lines: list[str]


def daemon_config(opts: SoakOptions) -> str:
    """luigi.cfg for the daemon: short delays so workers and tasks are pruned within seconds."""
    return (
        "[scheduler]\n"
        f"worker_disconnect_delay = {opts.worker_disconnect_delay}\n"
        f"remove_delay = {opts.remove_delay}\n"
        f"retry_delay = {opts.retry_delay}\n"
        f"state_snapshot_interval = {opts.snapshot_interval}\n"
        "[resources]\n"
        # the workload's two resources; generous so workers rarely leave for want of one
        f"warehouse = {max(1, opts.workers // 4)}\n"
        f"publish_api = {max(1, opts.workers // 4)}\n"
    )


def _plans(opts: SoakOptions, port: int, start: float) -> list[LoadPlan]:
    plans = []
    for index in range(opts.processes):
        slots = opts.workers // opts.processes + (1 if index < opts.workers % opts.processes else 0)
        plans.append(
            LoadPlan(
                port=port,
                proc_index=index,
                slots=slots,
                start_at=start,
                deadline=start + opts.seconds,
                task_seconds=opts.task_seconds,
                pipelines_per_worker=opts.pipelines_per_worker,
                fail_rate=opts.fail_rate,
                crash_rate=opts.crash_rate,
                ping_interval=opts.ping_interval,
                rejoin_seconds=opts.rejoin_seconds,
                ramp_seconds=opts.ramp_seconds,
                viewer_interval=opts.viewer_interval if index == 0 else 0.0,
                timeout=opts.timeout,
                max_lives_per_slot=int(opts.seconds / max(opts.task_seconds, 0.01)) + 10,
            )
        )
    return plans


@dataclass
class Samples:
    """What the parent measured of the daemon while the load ran."""

    rss: list[tuple[float, int]]
    changelog: list[ChangeLogSample]


def _drive(opts: SoakOptions, daemon: Daemon) -> tuple[list[LoadStats], Samples, float, bool]:
    """Run the load processes while sampling the daemon's RSS and change log; returns stats,
    samples, start, alive."""
    ctx = multiprocessing.get_context("fork")
    start = time.time() + 1.0  # every process begins at the same moment
    procs, pipes = [], []
    for plan in _plans(opts, daemon.port, start):
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=run_load_process, args=(plan, sender), daemon=True)
        proc.start()
        sender.close()
        procs.append(proc)
        pipes.append(receiver)
    samples = Samples([], [])
    alive = True
    end = start + opts.seconds
    for _ in range(int((opts.seconds + 2) / opts.rss_interval) + 1):
        now = time.time()
        if now > end:
            break
        if daemon.proc is None or daemon.proc.poll() is not None:
            alive = False
            break
        if now >= start:
            samples.rss.append((now, daemon.rss_bytes()))
            samples.changelog.append(sample_changelog(daemon.state_path, now))
        time.sleep(opts.rss_interval)
    results: list[LoadStats] = []
    for proc, pipe in zip(procs, pipes, strict=True):
        # in-flight calls end within the call timeout after the deadline
        if pipe.poll(opts.timeout + 30):
            results.append(pipe.recv())
        else:
            lost = LoadStats()
            lost.failed("load-process", f"load process {proc.pid} sent no results")
            results.append(lost)
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    alive = alive and daemon.proc is not None and daemon.proc.poll() is None
    return results, samples, start, alive


def run_soak(opts: SoakOptions, log: Any = None) -> SoakResult:
    """Start a daemon, soak it, stop it, judge the run (see bench/soak_verdict.py)."""
    rundir = Path(tempfile.mkdtemp(prefix="luigid-soak-"))
    (rundir / "luigi.cfg").write_text(daemon_config(opts))
    daemon = Daemon(DaemonSpec("soak", opts.daemon_cmd), rundir, REPO / "bench" / ".venv-luigi")
    load_before = os.getloadavg()[0]
    try:
        daemon.start()
        daemon.wait_ready(60)
        if log:
            log(f"[soak] daemon pid {daemon.proc.pid if daemon.proc else '?'} on port {daemon.port}")
        parts, samples, start, alive = _drive(opts, daemon)
        alive = alive and try_ping(daemon.port, "soak-final-check", timeout=opts.timeout)
    except DaemonError:
        daemon.kill()
        raise
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate(30)
        if not opts.keep_dir:
            shutil.rmtree(rundir, ignore_errors=True)
    end = start + opts.seconds
    stats = merge(parts)
    figures = method_figures(stats, opts.seconds)
    rss = samples.rss
    log = None
    if opts.snapshot_interval > 0:
        calls = state_changing_calls(stats)
        log = changelog_figures(
            samples.changelog, opts.snapshot_interval, opts.snapshot_slack, calls, start, end
        )
    verdict = judge(stats, rss, start, end, opts.rss_tolerance, opts.settle_seconds(), alive, log)
    if log is None:
        verdict.notes.append("snapshots off (--snapshot-interval 0): luigid writes no change log to check")
    # latencies mean little on a machine busy with other work; say how busy it was
    verdict.notes.append(
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)"
    )
    if opts.keep_dir:
        verdict.notes.append(f"daemon logs and state kept in {rundir}")
    settings = {
        "workers": opts.workers,
        "seconds": opts.seconds,
        "processes": opts.processes,
        "task_seconds": opts.task_seconds,
        "worker_disconnect_delay": opts.worker_disconnect_delay,
        "remove_delay": opts.remove_delay,
        "snapshot_interval": opts.snapshot_interval,
    }
    lines = report_lines(figures, stats, rss, start, end, verdict, settings, log)
    return SoakResult(verdict, figures, stats, rss, samples.changelog, start, end, lines)


def to_json(result: SoakResult, opts: SoakOptions) -> dict[str, Any]:
    return {
        "options": dataclasses.asdict(opts),
        "passed": result.verdict.passed,
        "failures": result.verdict.failures,
        "notes": result.verdict.notes,
        "methods": [dataclasses.asdict(f) for f in result.figures],
        "errors": result.stats.errors,
        "first_errors": result.stats.first_errors,
        "rss": [[round(t - result.start, 2), v] for t, v in result.rss],
        "changelog": [[round(s.at - result.start, 2), s.total, len(s.sizes)] for s in result.changelog],
        "state": [[round(s.at - result.start, 2), s.tasks, s.workers] for s in result.stats.state],
        "counts": {name: getattr(result.stats, name) for name in LoadStats.COUNTERS},
    }


def parse_args(argv: list[str] | None = None) -> tuple[SoakOptions, str | None]:
    defaults = SoakOptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(SoakOptions):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true")
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(flag, type=kind, default=getattr(defaults, f.name))
    parser.add_argument("--json", help="also write the figures to this file")
    ns = vars(parser.parse_args(argv))
    out = ns.pop("json")
    return SoakOptions(**ns), out


def main(argv: list[str] | None = None) -> int:
    opts, json_path = parse_args(argv)
    if opts.workers < 1 or opts.processes < 1 or opts.seconds <= 0:
        print("soak: --workers, --processes and --seconds must be positive", file=sys.stderr)
        return 2
    print(f"[soak] {opts.workers} workers for {opts.seconds:.0f}s ...", flush=True)
    result = run_soak(opts, log=lambda m: print(m, flush=True))
    print("\n".join(result.lines))
    if json_path:
        Path(json_path).write_text(json.dumps(to_json(result, opts), indent=1))
    return 0 if result.verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
