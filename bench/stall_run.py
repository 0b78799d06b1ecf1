"""How long luigid's event loop is held at scale, and by what: one 10-minute run.

    python bench/stall_run.py --tasks 1000000 --seconds 600

The state is written by our own Scheduler's ``dump`` (bench/ui_state.py: the benchmark's
14-task pipelines, dealt to ``--workers`` workers, plus failed and disabled extracts and a
5,000-task DAG), and the daemon starts from it with ``[scheduler] stall_trace`` on, so that
its stall monitor names what held the loop. Then, for ``--seconds``:

- snapshots on their normal schedule (``state_snapshot_interval``, 60 s by default), each a
  fork of the whole daemon;
- prune rounds every 60 s, as always;
- a fleet departure: ``--departing`` of the workers each take a task with get_work, then all
  fall silent together at ``--depart-at`` s; the prune round after
  ``worker_disconnect_delay`` (60 s) drops them all (their running tasks fail, their tasks lose
  their stakeholder), and the one after ``--remove-delay`` removes those tasks;
- the other workers stay (a ping every 5 s, bench/latency.py's KeepAlive);
- ``--pollers`` UI pollers (threads of one process), each every ``--poll-every`` s: the task
  list's ``/ui/tasks`` on its own view and the header's calls, as the page refreshing itself;
  task_list and worker_list as luigi's UI asks them; the last one also draws the 5,000-task
  DAG (dep_graph);
- a ping every 10 ms from a process of its own (bench/fleet_departure.py's ``watch``).

``--huge-pages`` starts the daemon with ``PYTHONMALLOC=malloc
GLIBC_TUNABLES=glibc.malloc.hugetlb=1``: every object from glibc's malloc, whose heap asks
for transparent huge pages, so that the snapshot's ``fork()`` copies 512 times fewer page
table entries (docs/operations.md).

Reported: the daemon's longest stall from its own monitor, and the longest on its CPU, with
what held the loop then; every stall over 50 ms it logged, grouped by culprit; the slowest,
p99 and p50 ping; RSS; load averages. Results go to ``bench/results/stalls-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import OURS_TEMPLATE, Daemon, DaemonSpec
from bench.fleet_departure import watch
from bench.latency import KeepAlive
from bench.run import count_tasks
from bench.ui_state import GRAPH_ROOT, build_state
from bench.wire import RpcClient, RpcError
from bench.workload import get_work_args, worker_id

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
#: every stall over the limit, as the daemon logs it with stall_trace on (luigid.runtime.stalls)
HELD = re.compile(
    r"Event loop held ([0-9.]+) ms \(([0-9.]+) ms on CPU\) by (.*?)(?:,| over) ([0-9.]+) ms on CPU$", re.M
)
#: the environment of --huge-pages
HUGE_PAGES = "env PYTHONMALLOC=malloc GLIBC_TUNABLES=glibc.malloc.hugetlb=1 "
#: the views the pollers keep open (the task list's own endpoint, as tasks.js asks it)
VIEWS = [
    {"status": "PENDING"},
    {"status": "DONE"},
    {"status": "FAILED,DISABLED"},
    {"status": "PENDING,RUNNING,DONE,FAILED,DISABLED", "search": "Transform"},
    {"status": "RUNNING"},
]


def config_text(args: argparse.Namespace) -> str:
    return (
        "[scheduler]\n"
        "stall_trace = true\n"
        f"state_snapshot_interval = {args.snapshot_interval}\n"
        f"remove_delay = {args.remove_delay}\n"
    )


class Poller(threading.Thread):
    """One browser left open on the task list (and, for the last, on a big graph)."""

    def __init__(self, port: int, index: int, every: float, stop: threading.Event, graph: bool) -> None:
        super().__init__(daemon=True)
        self.port, self.index, self.every, self.stop, self.graph = port, index, every, stop, graph
        self.polls = self.errors = 0
        self.slowest = 0.0

    def run(self) -> None:
        client = RpcClient(self.port, timeout=120)
        view = VIEWS[self.index % len(VIEWS)]
        query = urlencode({"search": "", **view, "sort": "-updated", "offset": "0", "limit": "100"})
        while not self.stop.wait(self.every):
            start = time.perf_counter()
            try:
                client.get(f"/ui/tasks?{query}")
                for method in ("is_pause_enabled", "is_paused", "has_task_history"):
                    client.call(method, {}, http_method="GET")
                client.call("task_list", {"status": "PENDING", "upstream_status": "", "search": ""}, "GET")
                client.call("worker_list", {}, http_method="GET")
                if self.graph:
                    client.call("dep_graph", {"task_id": GRAPH_ROOT, "include_done": True}, "GET")
                self.polls += 1
            except RpcError:
                self.errors += 1
            self.slowest = max(self.slowest, time.perf_counter() - start)
        client.close()


def take_work(port: int, workers: list[str]) -> int:
    """Each departing worker takes a task (so it leaves one RUNNING); how many got one."""
    client = RpcClient(port, timeout=120)
    taken = 0
    try:
        for worker in workers:
            reply = client.call("get_work", get_work_args(worker, []))
            taken += bool(isinstance(reply, dict) and reply.get("task_id"))
    finally:
        client.close()
    return taken


def ping_all(port: int, workers: list[str]) -> float:
    """One ping from every worker; how long that took."""
    client = RpcClient(port, timeout=120)
    start = time.perf_counter()
    try:
        for worker in workers:
            client.call("ping", {"worker": worker})
    finally:
        client.close()
    return time.perf_counter() - start


def _watch_process(port: int, seconds: float, out: Any) -> None:
    out.send(watch(port, seconds))


def held_by_culprit(log: str) -> list[dict[str, Any]]:
    """Every stall over 50 ms the daemon logged, grouped by what held the loop (the callback
    that used the most CPU meanwhile), the longest on the CPU first."""
    groups: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for match in HELD.finditer(log):
        name = re.sub(r" \(garbage collection [0-9]+ ms of it[^)]*\)", "", match.group(3))
        groups[name].append((float(match.group(1)), float(match.group(2)), float(match.group(4))))
    rows = [
        {
            "culprit": name,
            "stalls": len(found),
            "longest_ms": max(stall for stall, _, _ in found),
            "longest_on_cpu_ms": max(cpu for _, cpu, _ in found),
            "callback_cpu_max_ms": max(own for _, _, own in found),
        }
        for name, found in groups.items()
    ]
    return sorted(rows, key=lambda row: -row["longest_on_cpu_ms"])


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rundir = workdir / "ours"
    rundir.mkdir()
    (rundir / "luigi.cfg").write_text(config_text(args))
    template = (HUGE_PAGES if args.huge_pages else "") + OURS_TEMPLATE
    daemon = Daemon(DaemonSpec("ours", template), rundir, BENCH / ".venv-luigi")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    print(f"[stalls] our Scheduler builds {args.tasks} tasks for {args.workers} workers ...", flush=True)
    built = build_state(sys.executable, "luigid.scheduler", daemon.state_path, args.tasks, env, args.workers)
    workers = [worker_id("ui", i) for i in range(args.workers)]
    leaving, staying = workers[: args.departing], workers[args.departing :]
    daemon.start()
    result: dict[str, Any] = {
        "tasks": built,
        "workers": args.workers,
        "departing": args.departing,
        "huge_pages": args.huge_pages,
    }
    try:
        result["ready_s"] = round(daemon.wait_ready(timeout=600), 1)
        result["rss_start_mb"] = round(daemon.rss_bytes() / 2**20)
        print(f"[stalls] ready in {result['ready_s']} s, {result['rss_start_mb']} MB RSS", flush=True)
        # the state was built minutes ago: every worker must be heard of before the first
        # periodic prune (60 s after the start), or prune drops them all as departed
        result["first_pings_s"] = round(ping_all(daemon.port, workers), 1)
        result["loadavg_start"] = Path("/proc/loadavg").read_text().strip()
        ctx = multiprocessing.get_context("fork")
        parent_end, child_end = ctx.Pipe(duplex=False)
        pinger = ctx.Process(target=_watch_process, args=(daemon.port, args.seconds, child_end), daemon=True)
        pinger.start()
        started = time.monotonic()
        stop = threading.Event()
        pollers = [
            Poller(daemon.port, i, args.poll_every, stop, graph=i == args.pollers - 1)
            for i in range(args.pollers)
        ]
        rss_max = result["rss_start_mb"]

        def wait_until(seconds: float) -> None:
            nonlocal rss_max
            while time.monotonic() - started < seconds:
                time.sleep(1)
                rss_max = max(rss_max, round(daemon.rss_bytes() / 2**20))

        with KeepAlive(daemon.port, staying):
            with KeepAlive(daemon.port, leaving) as fleet:
                for poller in pollers:
                    poller.start()
                result["fleet_tasks_taken"] = take_work(daemon.port, leaving)
                wait_until(args.depart_at)
                result["fleet_ping_errors"] = fleet.errors
            print(
                f"[stalls] {len(leaving)} workers fell silent at {time.monotonic() - started:.0f} s",
                flush=True,
            )
            wait_until(args.seconds)
            stop.set()
            for poller in pollers:
                poller.join(timeout=120)
        result["ping"] = parent_end.recv() if parent_end.poll(120) else {"error": "pinger did not report"}
        pinger.join(timeout=10)
        result["polls"] = sum(p.polls for p in pollers)
        result["poll_errors"] = sum(p.errors for p in pollers)
        result["slowest_poll_ms"] = round(max(p.slowest for p in pollers) * 1000, 1)
        result["rss_max_mb"] = rss_max
        result["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
        result["tasks_at_end"] = count_tasks(daemon.port)
    finally:
        result["sigterm_s"] = daemon.terminate(timeout=300)
        daemon.kill()
    result.update(daemon.logged_stalls())
    logs = [rundir / "log" / "luigi-server.log", rundir / "daemon-output.log"]
    result["held_by"] = held_by_culprit("".join(p.read_text(errors="replace") for p in logs if p.exists()))
    return result


def print_tables(result: dict[str, Any]) -> None:
    ping = result["ping"]
    print("| measure | figure |")
    print("|---|---|")
    stall, on_cpu = result.get("loop_stall_max_ms"), result.get("loop_stall_on_cpu_max_ms")
    culprit, on_cpu_culprit = result.get("loop_stall_culprit"), result.get("loop_stall_on_cpu_culprit")
    print(f"| longest stall (daemon's monitor) | {stall} ms, held by {culprit} |")
    print(f"| longest on CPU | {on_cpu} ms, held by {on_cpu_culprit} |")
    slowest, p99, p50 = ping.get("slowest_ping_ms"), ping.get("p99_ping_ms"), ping.get("p50_ping_ms")
    print(f"| slowest / p99 / p50 ping | {slowest} / {p99} / {p50} ms |")
    print(f"| pings over 50 ms | {ping.get('pings_over_50ms')} of {ping.get('pings')} |")
    print(f"| RSS at start / max | {result['rss_start_mb']} / {result['rss_max_mb']} MB |")
    print(f"| load average start / end | {result['loadavg_start']} / {result['loadavg_end']} |")
    print()
    print("| stalls over 50 ms held by | count | longest | longest on CPU | the callback's CPU |")
    print("|---|---|---|---|---|")
    for row in result["held_by"]:
        figures = (row["longest_ms"], row["longest_on_cpu_ms"], row["callback_cpu_max_ms"])
        print(f"| {row['culprit']} | {row['stalls']} | " + " | ".join(f"{f} ms" for f in figures) + " |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--workers", type=int, default=500, help="workers the pipelines are dealt to")
    parser.add_argument("--departing", type=int, default=100, help="of them, how many leave together")
    parser.add_argument("--depart-at", type=float, default=60.0, help="seconds into the run")
    parser.add_argument("--remove-delay", type=float, default=120.0, help="[scheduler] remove_delay")
    parser.add_argument(
        "--snapshot-interval", type=float, default=60.0, help="[scheduler] state_snapshot_interval"
    )
    parser.add_argument("--pollers", type=int, default=5)
    parser.add_argument("--huge-pages", action="store_true", help="glibc malloc on transparent huge pages")
    parser.add_argument(
        "--poll-every", type=float, default=2.0, help="seconds between one poller's refreshes"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="luigid-stalls-") as folder:
        result = measure(args, Path(folder))
    result["command"] = "python bench/stall_run.py " + " ".join(argv)
    out = BENCH / "results" / f"stalls-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "held_by"}, indent=1))
    print()
    print_tables(result)
    print(f"\n[stalls] results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
