"""The prune rounds after a whole fleet of workers stops, on luigi 3.8.1's luigid and ours.

    python bench/fleet_departure.py --tasks 100000

When the workers that added N tasks go silent, two prune rounds touch every task: the one
after ``worker_disconnect_delay`` (the workers leave every task; each becomes unstaked) and
the one ``remove_delay`` later (every task is removed). Both daemons start from the same
state file, written by luigi's own Scheduler in the luigi virtualenv (so each daemon reads
it as a luigi state), with both delays at 1 s in a luigi.cfg beside them. A ping every
10 ms from another process then watches the event loop until both periodic prunes have run
(prune runs every 60 s in both) and the tasks are gone. Reported per daemon: the slowest
ping (an outside bound on how long a request waited), the tasks before and after, and for
ours the longest stall its own monitor logged. Not part of bench/run.py: it spends over two
minutes per daemon waiting for the prune timer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import LUIGI_TEMPLATE, OURS_TEMPLATE, Daemon, DaemonSpec, ensure_luigi_venv
from bench.latency import percentile
from bench.run import count_tasks
from bench.wire import RpcClient, RpcError

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CONFIG = "[scheduler]\nworker_disconnect_delay = 1\nremove_delay = 1\n"
PROBE_WORKER = "bench-fleet-probe"

# Runs inside the luigi virtualenv: luigi's own Scheduler adds the benchmark graph as the
# workers would and writes its state file.
BUILD_STATE = """
import sys
sys.path.insert(0, {repo!r})
from luigi.scheduler import Scheduler
from bench.workload import add_task_pending, build
sched = Scheduler(state_path={path!r}, record_task_history=False)
workload = build({tasks}, 8, "fleet")
for task in workload.tasks:
    sched.add_task(**add_task_pending(task))
sched.dump()
print(len(workload.tasks))
"""


def build_state(luigi_python: Path, path: Path, tasks: int) -> int:
    code = BUILD_STATE.format(repo=str(REPO), path=str(path), tasks=tasks)
    done = subprocess.run([str(luigi_python), "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def watch(port: int, seconds: float) -> dict[str, Any]:
    """Ping every 10 ms for ``seconds``; the slowest answers and when they came, p50 and p99."""
    client = RpcClient(port, timeout=60)
    latencies: list[tuple[float, float]] = []
    errors = 0
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            sent = time.perf_counter()
            try:
                client.call("ping", {"worker": PROBE_WORKER})
            except RpcError:
                errors += 1
            latencies.append((sent - start, time.perf_counter() - sent))
            time.sleep(0.01)
    finally:
        client.close()
    slowest = sorted(latencies, key=lambda pair: pair[1], reverse=True)[:3]
    times = [took for _, took in latencies]
    return {
        "p50_ping_ms": round(percentile(times, 50) * 1000, 2) if times else None,
        "p99_ping_ms": round(percentile(times, 99) * 1000, 2) if times else None,
        "pings_over_50ms": sum(1 for took in times if took > 0.05),
        "pings": len(latencies),
        "errors": errors,
        "slowest_ping_ms": round(slowest[0][1] * 1000, 1) if slowest else None,
        "slowest_three": [{"at_s": round(at, 1), "ms": round(ms * 1000, 1)} for at, ms in slowest],
    }


def run_one(
    spec: DaemonSpec, state: Path, built: int, workdir: Path, venv: Path, seconds: float
) -> dict[str, Any]:
    rundir = workdir / spec.name
    rundir.mkdir()
    (rundir / "luigi.cfg").write_text(CONFIG)  # the daemons start with the run directory as cwd
    daemon = Daemon(spec, rundir, venv)
    shutil.copy(state, daemon.state_path)
    daemon.start()
    try:
        # no task_list before watching: luigi's would run the first heavy prune inside it
        ready = daemon.wait_ready(timeout=120)
        watched = watch(daemon.port, seconds)
        after = count_tasks(daemon.port)
    finally:
        daemon.terminate(timeout=120)
        daemon.kill()
    return {
        "daemon": spec.name,
        "ready_s": round(ready, 2),
        "tasks_before": built,
        "tasks_after": after,
        **watched,
        **daemon.logged_stalls(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=135.0, help="how long to watch each daemon")
    parser.add_argument("--luigi-venv", type=Path, default=BENCH / ".venv-luigi")
    args = parser.parse_args(argv)
    ensure_luigi_venv(args.luigi_venv)
    results = []
    with tempfile.TemporaryDirectory(prefix="luigid-fleet-") as folder:
        workdir = Path(folder)
        state = workdir / "luigi-state.pickle"
        print(f"[fleet] luigi's Scheduler builds {args.tasks} tasks ...", flush=True)
        built = build_state(args.luigi_venv / "bin" / "python", state, args.tasks)
        print(f"[fleet] {built} tasks, state file {state.stat().st_size / 2**20:.1f} MB", flush=True)
        for spec in (DaemonSpec("luigi", LUIGI_TEMPLATE), DaemonSpec("ours", OURS_TEMPLATE)):
            print(f"[fleet] {spec.name}: watching for {args.seconds:.0f} s ...", flush=True)
            results.append(run_one(spec, state, built, workdir, args.luigi_venv, args.seconds))
            print(json.dumps(results[-1]), flush=True)
    print()
    print("| measure | luigi 3.8.1 | luigid |")
    print("|---|---|---|")
    rows = [
        ("tasks at start", "tasks_before"),
        ("tasks after both prune rounds", "tasks_after"),
        ("slowest ping while the rounds ran (ms)", "slowest_ping_ms"),
        ("ping errors", "errors"),
        ("longest event-loop stall logged inside the daemon (ms)", "loop_stall_max_ms"),
    ]
    by_name = {r["daemon"]: r for r in results}
    for label, key in rows:
        cells = [by_name[name].get(key) for name in ("luigi", "ours")]
        print(f"| {label} | " + " | ".join("n/a" if c is None else str(c) for c in cells) + " |")
    # (the count is a task_list, which prunes by itself in both daemons: the slowest pings'
    # times, near 60 s and 120 s, are what show the periodic rounds ran in the window)
    left = {r["daemon"]: r["tasks_after"] for r in results if r["tasks_after"] != 0}
    if left:
        print(f"[fleet] tasks were left after the rounds: {left}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
