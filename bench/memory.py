"""Memory per task as issue 14 measures it, on a real daemon over HTTP:

    python bench/memory.py --tasks 100000

Loaded minus idle, per task: the daemon's peak RSS (VmHWM) over the whole run, and the PSS
summed over the daemon and any child it forks (the snapshot writer), sampled all along;
both after the UI's big replies (task_list, graph) too. The graph is bench/workload.py's,
preloaded as bench/run.py does; a snapshot is taken every ``--snapshot-interval`` seconds
(a luigi.cfg in the daemon's run directory), and the run waits for one to be written after
the big replies. See bench/README.md, "Memory per task".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import OURS_TEMPLATE, Daemon, DaemonSpec
from bench.latency import KeepAlive
from bench.preload import Preload
from bench.wire import RpcClient
from bench.workload import build

BENCH = Path(__file__).resolve().parent


def rollup(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup in bytes ({} once the process is gone)."""
    sizes: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as lines:
            for line in lines:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    sizes[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except OSError:
        return {}
    return sizes


class TreeSampler:
    """Samples the PSS of the daemon plus its children every ``every`` seconds in a thread;
    keeps the highest sum, and the highest sum seen while a child was alive."""

    def __init__(self, daemon: Daemon, every: float = 0.02) -> None:
        self.daemon, self.every = daemon, every
        self.peak_pss = 0
        self.peak_pss_forked = 0
        self.peak_child_private_dirty = 0
        self.children_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def snapshots_after(self, seen: set[int]) -> set[int]:
        return self.children_seen - seen

    def _run(self) -> None:
        assert self.daemon.proc is not None
        pid = self.daemon.proc.pid
        while not self._stop.wait(self.every):
            children = self.daemon.children()
            total = rollup(pid).get("Pss", 0)
            for child in children:
                sizes = rollup(child)
                total += sizes.get("Pss", 0)
                self.peak_child_private_dirty = max(
                    self.peak_child_private_dirty, sizes.get("Private_Dirty", 0)
                )
            self.peak_pss = max(self.peak_pss, total)
            if children:
                self.children_seen.update(children)
                self.peak_pss_forked = max(self.peak_pss_forked, total)


def big_replies(port: int) -> dict[str, float]:
    """The UI's big replies, as bench/latency.py asks for them: seconds each."""
    client = RpcClient(port, timeout=600)
    took = {}
    for name, method, args, http in (
        ("task_list_pending", "task_list", {"status": "PENDING", "upstream_status": "", "search": ""}, "GET"),
        ("task_list_all", "task_list", {"status": "", "upstream_status": "", "search": ""}, "GET"),
        ("graph", "graph", {}, "POST"),
    ):
        took[name], _ = client.timed_call(method, args, http_method=http)
    client.close()
    return took


def measure(args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    workload = build(args.tasks, args.workers, "w")
    rundir.mkdir(parents=True, exist_ok=True)
    # the daemon runs in its run directory and reads this file there
    (rundir / "luigi.cfg").write_text(f"[scheduler]\nstate_snapshot_interval = {args.snapshot_interval}\n")
    daemon = Daemon(DaemonSpec("ours", args.ours_cmd), rundir, BENCH / ".venv-luigi")
    out: dict[str, Any] = {
        "argv": daemon.argv,
        "tasks": len(workload.tasks),
        "loadavg_at_start": os.getloadavg(),
    }
    daemon.start()
    try:
        daemon.wait_ready(args.stop_timeout)
        time.sleep(1.0)
        idle_rss = daemon.rss_bytes()
        assert daemon.proc is not None
        idle_pss = rollup(daemon.proc.pid)["Pss"]
        deadline = time.time() + args.max_seconds
        with TreeSampler(daemon) as sampler:
            loading = Preload(daemon.port, workload, args.preload_procs, deadline)
            with KeepAlive(daemon.port, workload.workers):
                pre = loading.collect()
                out["preload_s"] = pre.seconds
                out["added"] = pre.added
                out["errors"] = pre.errors
                loaded_rss = daemon.rss_bytes()
                out["pss_peak_preload_mb"] = sampler.peak_pss / 2**20
                out["replies_s"] = big_replies(daemon.port)
                after_rss = daemon.rss_bytes()
                # a snapshot started after the replies, written to the end
                before = set(sampler.children_seen)
                wait_until = time.time() + 2 * args.snapshot_interval + args.stop_timeout
                while time.time() < wait_until:
                    if sampler.snapshots_after(before) and not daemon.children():
                        break
                    time.sleep(0.1)
                else:
                    out["note"] = "no snapshot written after the big replies"
                time.sleep(0.2)
        n = max(1, pre.added)
        peak_rss = daemon.rss_bytes("VmHWM")
        out.update(
            {
                "idle_rss_mb": idle_rss / 2**20,
                "idle_pss_mb": idle_pss / 2**20,
                "rss_after_preload_per_task": (loaded_rss - idle_rss) / n,
                "rss_after_replies_per_task": (after_rss - idle_rss) / n,
                "peak_rss_per_task": (peak_rss - idle_rss) / n,
                "peak_tree_pss_per_task": (sampler.peak_pss - idle_pss) / n,
                "peak_tree_pss_during_snapshot_per_task": (sampler.peak_pss_forked - idle_pss) / n,
                "peak_child_private_dirty_per_task": sampler.peak_child_private_dirty / n,
                "snapshots_seen": len(sampler.children_seen),
                "peak_rss_mb": peak_rss / 2**20,
                "peak_tree_pss_mb": sampler.peak_pss / 2**20,
            }
        )
        out["sigterm_exit_s"] = daemon.terminate(args.stop_timeout)
    finally:
        daemon.kill()
    out["loadavg_at_end"] = os.getloadavg()
    return out


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--preload-procs", type=int, default=4)
    p.add_argument("--snapshot-interval", type=float, default=20.0, help="seconds between snapshots")
    p.add_argument("--ours-cmd", default=OURS_TEMPLATE, help="command template (bench/run.py's --ours-cmd)")
    p.add_argument("--stop-timeout", type=float, default=180.0)
    p.add_argument("--max-seconds", type=float, default=3600.0)
    p.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = p.parse_args(argv)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    rundir = BENCH / "runs" / f"memory-{stamp}"
    try:
        out = measure(args, rundir)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    target = args.results_dir / f"memory-{stamp}.json"
    target.write_text(json.dumps(out, indent=2))
    for key, value in out.items():
        print(f"{key:45} {value}")
    print(f"results: {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
