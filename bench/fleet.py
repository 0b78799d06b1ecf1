"""Fleet capacity: how many luigi workers one daemon serves, luigi 3.8.1's and ours side by side.

    python bench/fleet.py --sizes 500,1000,2000,3000,4000

Three daemons by default: luigi 3.8.1 ("luigi"), ours as one process ("ours") and ours with
``--http-processes`` HTTP front processes (``[server] http_processes``, "fronts").

For every size N (ascending) and each daemon in turn, a fresh daemon is loaded with
``--background`` tasks (20k by default, from 8 workers kept alive), then N simulated luigi workers
(bench/fleet_client.py: ping every second, 5-task chains, get_work, exponential 10 s tasks,
add_task(DONE), 1 s idle polls) run from ``--procs`` asyncio client processes. Workers start
spread over ``--ramp`` seconds; latencies are kept for the ``--seconds`` after ``--warmup``.

A size is *held* when get_work p99 <= 100 ms and ping p99 <= 100 ms, no call failed (an HTTP
error, a broken reply, or no reply within 10 s) and no worker went longer than the scheduler's
worker_disconnect_delay (60 s) without an answer. The capacity is the largest size held; a daemon
that fails a size is not run at larger ones (``--keep-going`` runs them anyway).

The daemon's CPU (all its threads, from /proc/<pid>/stat, plus its front processes', also shown
apart) and the clients' CPU are measured over the same window, with the clients' event-loop lag,
so a slow figure can be told apart from a busy client. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import LUIGI_TEMPLATE, OURS_TEMPLATE, Daemon, DaemonError, DaemonSpec, ensure_luigi_venv
from bench.fleet_client import KINDS, Plan
from bench.latency import KeepAlive, percentile
from bench.preload import Preload
from bench.workload import build

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LIMIT_MS = 100.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class FleetOptions:
    sizes: list[int]
    daemons: list[str]
    templates: dict[str, str]
    background: int = 20000
    procs: int = 4
    ramp: float = 20.0
    warmup: float = 25.0
    seconds: float = 60.0
    task_mean: float = 10.0
    keep_going: bool = False
    rounds: int = 1
    luigi_venv: Path = BENCH / ".venv-luigi"
    keep_runs: bool = False
    #: front processes of the "fronts" daemon (ours, with [server] http_processes)
    http_processes: int = 2

    def spec(self, name: str) -> DaemonSpec:
        config = f"[server]\nhttp_processes = {self.http_processes}\n" if name == "fronts" else ""
        return DaemonSpec(name, self.templates[name], config)


DAEMONS = ("luigi", "ours", "fronts")


def daemon_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the whole process (every thread), from /proc/<pid>/stat.
    System time is mostly the kernel's loopback TCP work for the daemon's sends and receives."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def fronts_cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) summed over front processes (one that is gone counts nothing)."""
    user = system = 0.0
    for pid in pids:
        try:
            u, s = daemon_cpu_seconds(pid)
        except OSError:
            continue
        user, system = user + u, system + s
    return user, system


def _pct(values: list[float], p: float) -> float | None:
    return round(percentile(values, p), 3) if values else None


def run_size(options: FleetOptions, spec: DaemonSpec, size: int, rundir: Path) -> dict[str, Any]:
    """One daemon at one fleet size; returns every figure of the round."""
    daemon = Daemon(spec, rundir, options.luigi_venv)
    daemon.start()
    try:
        daemon.wait_ready(120)
        out: dict[str, Any] = {"daemon": spec.name, "workers": size, "argv": daemon.argv}
        background = build(options.background, 8, "bg")
        loading = Preload(daemon.port, background, 4, time.time() + 600)
        with KeepAlive(daemon.port, background.workers):
            pre = loading.collect()
            out["background_tasks"] = pre.added
            out["background_errors"] = pre.errors
            out.update(_run_fleet(options, daemon, size))
        out["rss_end_mb"] = round(daemon.rss_bytes() / 2**20, 1)
        out["sigterm_exit_s"] = daemon.terminate(60)
        out.update(daemon.logged_stalls())
        return out
    finally:
        daemon.kill()


def _run_fleet(options: FleetOptions, daemon: Daemon, size: int) -> dict[str, Any]:
    assert daemon.proc is not None
    procs = max(1, min(options.procs, size))
    t0 = time.time() + 1.0 + 0.002 * size  # time for the clients to start and import
    window_start = t0 + options.warmup
    stop = window_start + options.seconds
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    clients = []
    for i in range(procs):
        first, count = size * i // procs, size * (i + 1) // procs - size * i // procs
        plan = Plan(
            port=daemon.port,
            first=first,
            count=count,
            t0=t0,
            ramp=options.ramp,
            window_start=window_start,
            stop=stop,
            task_mean=options.task_mean,
            seed=1000 * size + i,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fleet_client"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=env,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(vars(plan)).encode())
        proc.stdin.close()
        clients.append(proc)
    time.sleep(max(0.0, window_start - time.time()))
    fronts = daemon.front_pids()
    (user_start, sys_start), wall_start = daemon_cpu_seconds(daemon.proc.pid), time.time()
    fronts_start = fronts_cpu_seconds(fronts)
    time.sleep(max(0.0, stop - time.time()))
    user_end, sys_end = daemon_cpu_seconds(daemon.proc.pid)
    fronts_end = fronts_cpu_seconds(fronts)
    wall = time.time() - wall_start
    lost = [pid for pid in fronts if pid not in daemon.front_pids()]
    parts = []
    for proc in clients:
        assert proc.stdout is not None
        raw = proc.stdout.read()
        proc.wait(timeout=120)
        parts.append(json.loads(raw) if raw else {"client_error": f"exit {proc.returncode}"})
    out = _merge(
        parts,
        user_end - user_start + fronts_end[0] - fronts_start[0],
        sys_end - sys_start + fronts_end[1] - fronts_start[1],
        wall,
    )
    scheduler_cpu = user_end - user_start + sys_end - sys_start
    calls = out["calls_in_window"]
    out["fronts"] = len(fronts)
    out["fronts_lost_in_window"] = len(lost)
    out["scheduler_cores"] = round(scheduler_cpu / wall, 3) if wall else None
    out["scheduler_cpu_ms_per_call"] = round(1000 * scheduler_cpu / calls, 4) if calls else None
    return out


def _merge(parts: list[dict[str, Any]], daemon_user: float, daemon_sys: float, wall: float) -> dict[str, Any]:
    broken = [p["client_error"] for p in parts if "client_error" in p]
    parts = [p for p in parts if "client_error" not in p]
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    lag: list[float] = []
    for p in parts:
        for k in KINDS:
            samples[k].extend(p["samples"][k])
        lag.extend(p["loop_lag"])
    calls = sum(p["calls_in_window"] for p in parts)
    window = max((p["window_s"] for p in parts), default=wall)
    daemon_cpu = daemon_user + daemon_sys
    out: dict[str, Any] = {
        "window_s": round(window, 2),
        "calls_in_window": calls,
        "calls_per_s": round(calls / window, 1) if window else None,
        "daemon_cpu_s": round(daemon_cpu, 2),
        "daemon_cores": round(daemon_cpu / wall, 3) if wall else None,
        "daemon_cpu_ms_per_call": round(1000 * daemon_cpu / calls, 4) if calls else None,
        "daemon_system_share": round(daemon_sys / daemon_cpu, 3) if daemon_cpu else None,
        "client_cores": round(sum(p["cpu_window_s"] for p in parts) / window, 3) if window else None,
        "client_cores_max_proc": round(max((p["cpu_window_s"] for p in parts), default=0) / window, 3)
        if window
        else None,
        "client_loop_lag_p99_ms": _pct(lag, 99),
        "client_loop_lag_max_ms": round(max(lag), 1) if lag else None,
        "failures": sum(p["failures"] for p in parts) + len(broken),
        "failures_in_window": sum(p["failures_in_window"] for p in parts),
        "first_failures": [f for p in parts for f in p["first_failures"]][:5] + broken,
        "workers_timed_out": sum(p["workers_timed_out"] for p in parts),
        "max_contact_gap_s": round(max((p["max_contact_gap"] for p in parts), default=0.0), 2),
        "workers_started": sum(p["workers_started"] for p in parts),
        "tasks_done": sum(p["tasks_done"] for p in parts),
        "chains_done": sum(p["chains_done"] for p in parts),
        "unknown_tasks": sum(p["unknown_tasks"] for p in parts),
        "calls": {
            k: {"n": len(v), "p50_ms": _pct(v, 50), "p99_ms": _pct(v, 99), "max_ms": _pct(v, 100)}
            for k, v in samples.items()
        },
    }
    gw, ping = out["calls"]["get_work"]["p99_ms"], out["calls"]["ping"]["p99_ms"]
    out["held"] = bool(
        gw is not None
        and ping is not None
        and gw <= LIMIT_MS
        and ping <= LIMIT_MS
        and out["failures"] == 0
        and out["workers_timed_out"] == 0
        and not broken
    )
    return out


def run_fleet(options: FleetOptions) -> dict[str, Any]:
    """Every (size, daemon) round, ascending sizes, daemons alternating within a size."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    runs = BENCH / "runs" / f"fleet-{stamp}"
    rounds: list[dict[str, Any]] = []
    notes: list[str] = []
    failed: set[str] = set()
    try:
        for size in options.sizes:
            for rnd in range(1, options.rounds + 1):
                for name in options.daemons:
                    if name in failed and not options.keep_going:
                        notes.append(f"{name} not run at {size} workers: it did not hold a smaller fleet")
                        continue
                    spec = options.spec(name)
                    print(f"[fleet] {name} with {size} workers, round {rnd} ...", flush=True)
                    r = run_size(options, spec, size, runs / f"{name}-{size}-{rnd}")
                    r["round"] = rnd
                    rounds.append(r)
                    print("        " + summary_line(r), flush=True)
            # a size is held when every round of it was
            for name in options.daemons:
                if any(not r["held"] for r in rounds if r["daemon"] == name and r["workers"] == size):
                    failed.add(name)
    finally:
        if not options.keep_runs:
            shutil.rmtree(runs, ignore_errors=True)
    capacity = {
        name: max(
            (
                size
                for size in options.sizes
                if (mine := [r for r in rounds if r["daemon"] == name and r["workers"] == size])
                and all(r["held"] for r in mine)
            ),
            default=0,
        )
        for name in options.daemons
    }
    return {"stamp": stamp, "rounds": rounds, "capacity": capacity, "notes": notes}


def summary_line(r: dict[str, Any]) -> str:
    c = r["calls"]
    return (
        f"get_work p99 {c['get_work']['p99_ms']} ms, ping p99 {c['ping']['p99_ms']} ms, "
        f"{r['calls_per_s']} calls/s, daemon {r['daemon_cores']} cores "
        f"({r['daemon_cpu_ms_per_call']} ms CPU/call, {r['daemon_system_share']} in the kernel"
        + (
            f"; scheduler process alone {r['scheduler_cores']} cores, "
            f"{r['scheduler_cpu_ms_per_call']} ms/call"
            if r.get("fronts")
            else ""
        )
        + "), "
        f"clients {r['client_cores']} cores "
        f"(loop lag p99 {r['client_loop_lag_p99_ms']} ms), failures {r['failures']}, "
        f"timed out {r['workers_timed_out']}: {'held' if r['held'] else 'NOT held'}"
    )


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        "| workers | daemon, round | get_work p50 / p99 | ping p50 / p99 | add_task(DONE) p99 | calls/s "
        "| daemon CPU | CPU per call | of which the scheduler process | clients' CPU (loop lag p99) "
        "| failed calls / timed-out workers | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rounds"]:
        c = r["calls"]
        lines.append(
            f"| {r['workers']:,} | {r['daemon']} {r['round']} "
            f"| {c['get_work']['p50_ms']} / {c['get_work']['p99_ms']} ms "
            f"| {c['ping']['p50_ms']} / {c['ping']['p99_ms']} ms | {c['add_task(DONE)']['p99_ms']} ms "
            f"| {r['calls_per_s']:,} | {r['daemon_cores']} cores | {r['daemon_cpu_ms_per_call']} ms "
            f"| {_scheduler_share(r)} "
            f"| {r['client_cores']} cores ({r['client_loop_lag_p99_ms']} ms) "
            f"| {r['failures']} / {r['workers_timed_out']} | {'yes' if r['held'] else 'no'} |"
        )
    return "\n".join(lines)


def _scheduler_share(r: dict[str, Any]) -> str:
    if not r.get("fronts"):
        return "-"
    return f"{r['scheduler_cores']} cores, {r['scheduler_cpu_ms_per_call']} ms ({r['fronts']} fronts)"


def parse_args(argv: list[str]) -> tuple[FleetOptions, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="500,1000,2000,3000,4000", help="fleet sizes (default %(default)s)")
    p.add_argument(
        "--daemons", default="luigi,ours,fronts", help="any of luigi, ours, fronts (default %(default)s)"
    )
    p.add_argument(
        "--http-processes", type=int, default=2, help="front processes of the fronts daemon (default 2)"
    )
    p.add_argument("--background", type=int, default=20000, help="background tasks (default 20000)")
    p.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    p.add_argument("--ramp", type=float, default=20.0, help="seconds over which workers start")
    p.add_argument("--warmup", type=float, default=25.0, help="seconds before the measured window")
    p.add_argument("--seconds", type=float, default=60.0, help="the measured window (default 60)")
    p.add_argument("--task-mean", type=float, default=10.0, help="mean task run time (default 10 s)")
    p.add_argument("--keep-going", action="store_true", help="run larger sizes after a failed one")
    p.add_argument("--rounds", type=int, default=1, help="rounds per size and daemon, alternating")
    p.add_argument("--luigi-cmd", default=LUIGI_TEMPLATE, help="command template for luigi's daemon")
    p.add_argument("--ours-cmd", default=OURS_TEMPLATE, help="command template for our daemon (ours, fronts)")
    p.add_argument("--luigi-venv", type=Path, default=BENCH / ".venv-luigi")
    p.add_argument("--results-dir", type=Path, default=BENCH / "results")
    p.add_argument("--keep-runs", action="store_true", help="keep daemon logs under bench/runs/")
    a = p.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in a.sizes.split(",") if s.strip()})
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {a.sizes!r}")
    daemons = [d.strip() for d in a.daemons.split(",") if d.strip()]
    if not daemons or not set(daemons) <= set(DAEMONS):
        p.error(f"--daemons: expected any of {', '.join(DAEMONS)}, got {a.daemons!r}")
    if a.http_processes < 2:
        p.error("--http-processes: at least 2 (1 is the ours daemon)")
    if not sizes or min(sizes) < 1:
        p.error("--sizes: every size must be at least 1")
    options = FleetOptions(
        sizes=sizes,
        daemons=daemons,
        templates={"luigi": a.luigi_cmd, "ours": a.ours_cmd, "fronts": a.ours_cmd},
        background=a.background,
        procs=a.procs,
        ramp=a.ramp,
        warmup=a.warmup,
        seconds=a.seconds,
        task_mean=a.task_mean,
        keep_going=a.keep_going,
        rounds=max(1, a.rounds),
        luigi_venv=a.luigi_venv,
        keep_runs=a.keep_runs,
        http_processes=a.http_processes,
    )
    return options, a


def main(argv: list[str]) -> int:
    options, a = parse_args(argv)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    load_start = os.getloadavg()
    try:
        if "luigi" in options.daemons and "{luigi_venv}" in options.templates["luigi"]:
            ensure_luigi_venv(options.luigi_venv)
        result = run_fleet(options)
    except DaemonError as exc:
        print(f"[fleet] error: {exc}", file=sys.stderr)
        return 1
    result["meta"] = {
        "started": started,
        "command": "python bench/fleet.py " + " ".join(shlex.quote(x) for x in argv),
        "templates": options.templates,
        "http_processes": options.http_processes,
        "loadavg_at_start": load_start,
        "loadavg_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    a.results_dir.mkdir(parents=True, exist_ok=True)
    path = a.results_dir / f"fleet-{result['stamp']}.json"
    path.write_text(json.dumps(result, indent=1))
    print(markdown_table(result))
    for note in result["notes"]:
        print(f"note: {note}")
    print("capacity: " + ", ".join(f"{k} {v:,} workers" for k, v in result["capacity"].items()))
    print(f"[fleet] results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
