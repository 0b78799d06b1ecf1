"""Benchmark luigi 3.8.1's luigid against ours, side by side, in one invocation.

    python bench/run.py --sizes 1000,10000,100000

For every size it runs fresh daemons in the order luigi, ours, luigi, ours (``--rounds`` pairs),
preloads the graph, samples each call, then measures SIGTERM-to-exit and restart-to-first-ping.
A throughput phase with concurrent workers follows. Results go to bench/results/<time>.json and the
table to docs/performance.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import LUIGI_TEMPLATE, OURS_TEMPLATE, Daemon, DaemonError, DaemonSpec, ensure_luigi_venv
from bench.latency import CALLS, LABELS, KeepAlive, Samples, measure_calls, percentile
from bench.preload import Preload
from bench.report import DAEMONS, console_lines, markdown, summarize_size, summarize_throughput
from bench.throughput import run_throughput
from bench.wire import RpcClient, RpcError
from bench.workload import Workload, build

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated task counts (default %(default)s)"
    )
    p.add_argument(
        "--rounds", type=int, default=2, help="rounds per daemon, alternating luigi/ours (default 2)"
    )
    p.add_argument("--samples", type=int, default=200, help="calls sampled per measurement (default 200)")
    p.add_argument(
        "--call-budget",
        type=float,
        default=20.0,
        help="seconds one measurement may take per round; slow calls get fewer samples (min 3)",
    )
    p.add_argument("--workers", type=int, default=8, help="workers that preload the graph (default 8)")
    p.add_argument("--preload-procs", type=int, default=4, help="client processes used for preloading")
    p.add_argument(
        "--throughput-tasks", type=int, default=20000, help="graph size of the throughput run; 0 skips it"
    )
    p.add_argument("--throughput-workers", type=int, default=16)
    p.add_argument("--throughput-seconds", type=float, default=60.0, help="cap on one throughput round")
    p.add_argument(
        "--max-seconds", type=float, default=3600.0, help="overall wall-clock cap; later rounds are skipped"
    )
    p.add_argument("--stop-timeout", type=float, default=180.0, help="cap on waiting for exit or readiness")
    p.add_argument(
        "--daemons",
        default="luigi,ours",
        help="which daemons to run, comma-separated (default %(default)s); one alone gives no ratios",
    )
    p.add_argument("--luigi-cmd", default=LUIGI_TEMPLATE, help="command template for luigi's daemon")
    p.add_argument("--ours-cmd", default=OURS_TEMPLATE, help="command template for our daemon")
    p.add_argument("--luigi-venv", type=Path, default=BENCH / ".venv-luigi")
    p.add_argument("--results-dir", type=Path, default=BENCH / "results")
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    p.add_argument(
        "--keep-runs", action="store_true", help="keep daemon state/log directories under bench/runs/"
    )
    args = p.parse_args(argv)
    try:
        args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    args.daemon_list = [d.strip() for d in args.daemons.split(",") if d.strip()]
    if not args.daemon_list or not set(args.daemon_list) <= {"luigi", "ours"}:
        p.error(f"--daemons: expected luigi, ours or both, got {args.daemons!r}")
    if not args.size_list or min(args.size_list) < 14:
        p.error("--sizes: every size must be at least 14 (one pipeline)")
    for name in ("luigi_cmd", "ours_cmd"):
        for placeholder in ("{port}", "{state}", "{logdir}"):
            if placeholder not in getattr(args, name):
                p.error(f"--{name.replace('_', '-')}: template lacks {placeholder}")
    return args


def _samples_json(s: Samples) -> dict[str, Any]:
    ms = [round(x * 1000, 4) for x in s.seconds]
    return {
        "samples_ms": ms,
        "n": len(ms),
        "p50_ms": percentile(ms, 50) if ms else None,
        "p99_ms": percentile(ms, 99) if ms else None,
        "errors": s.errors,
        "first_error": s.first_error,
        "budget_hit": s.budget_hit,
        "note": s.note,
    }


def count_tasks(port: int) -> int | None:
    """Total task count, asked the cheap way: task_list over everything with max_shown_tasks=1."""
    client = RpcClient(port)
    try:
        reply = client.call(
            "task_list",
            {"status": "", "upstream_status": "", "limit": True, "search": None, "max_shown_tasks": 1},
        )
    except RpcError:
        return None
    finally:
        client.close()
    if isinstance(reply, dict) and set(reply) == {"num_tasks"}:
        return int(reply["num_tasks"])
    return len(reply) if isinstance(reply, dict) else None


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline = time.time() + args.max_seconds
        templates = {"luigi": args.luigi_cmd, "ours": args.ours_cmd}
        self.specs = [DaemonSpec(name, templates[name]) for name in DAEMONS if name in args.daemon_list]
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.stamp = stamp
        self.runs = BENCH / "runs" / stamp
        self.live: list[Daemon] = []
        self.notes: list[str] = []

    def _daemon(self, spec: DaemonSpec, rundir: Path) -> Daemon:
        daemon = Daemon(spec, rundir, self.args.luigi_venv)
        self.live.append(daemon)
        return daemon

    def cleanup(self) -> None:
        for daemon in self.live:
            daemon.kill()
        if not self.args.keep_runs:
            shutil.rmtree(self.runs, ignore_errors=True)

    def order(self) -> list[tuple[int, DaemonSpec]]:
        return [(r + 1, spec) for r in range(self.args.rounds) for spec in self.specs]

    def size_round(self, spec: DaemonSpec, rnd: int, size: int, workload: Workload) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {"daemon": spec.name, "round": rnd, "tasks": len(workload.tasks)}
        daemon = self._daemon(spec, self.runs / f"n{size}-{spec.name}-{rnd}")
        out["argv"] = daemon.argv
        daemon.start()
        out["first_ready_s"] = daemon.wait_ready(a.stop_timeout)
        rss_idle = daemon.rss_bytes()
        loading = Preload(daemon.port, workload, a.preload_procs, self.deadline)
        with KeepAlive(daemon.port, workload.workers) as keepalive:
            pre = loading.collect()
            rss_loaded = daemon.rss_bytes()
            calls = measure_calls(daemon.port, workload, a.samples, a.call_budget, self.deadline)
        out["preload"] = vars(pre)
        out["preload_tasks_per_s"] = pre.added / pre.seconds if pre.seconds > 0 else None
        out["keepalive_errors"] = keepalive.errors
        out["checks"] = calls.pop("checks")
        out["calls"] = {name: _samples_json(s) for name, s in calls.items()}
        out["rss_idle_mb"] = rss_idle / 2**20
        out["rss_loaded_mb"] = rss_loaded / 2**20
        out["rss_per_task_bytes"] = (rss_loaded - rss_idle) / max(1, pre.added)
        out["rss_end_mb"] = daemon.rss_bytes() / 2**20
        out["tasks_before_stop"] = count_tasks(daemon.port)
        out["sigterm_exit_s"] = daemon.terminate(a.stop_timeout)
        if out["sigterm_exit_s"] is None:
            out["sigterm_note"] = f"did not exit within {a.stop_timeout:.0f}s of SIGTERM; killed"
        out["state_mb"] = daemon.state_bytes() / 2**20
        out.update(daemon.logged_stalls())
        again = self._daemon(spec, daemon.rundir)
        again.start()
        out["restart_ready_s"] = again.wait_ready(a.stop_timeout)
        out["tasks_after_restart"] = count_tasks(again.port)
        again.terminate(a.stop_timeout)
        return out

    def throughput_round(self, spec: DaemonSpec, rnd: int, workload: Workload) -> dict[str, Any]:
        a = self.args
        daemon = self._daemon(spec, self.runs / f"throughput-{spec.name}-{rnd}")
        daemon.start()
        daemon.wait_ready(a.stop_timeout)
        loading = Preload(daemon.port, workload, a.preload_procs, self.deadline)
        with KeepAlive(daemon.port, workload.workers):
            pre = loading.collect()
        # The keep-alive thread is stopped before the worker processes are forked.
        cap = max(1.0, min(a.throughput_seconds, self.deadline - time.time()))
        out = run_throughput(daemon.port, workload, cap)
        out.update({"daemon": spec.name, "round": rnd, "preload": vars(pre)})
        daemon.terminate(a.stop_timeout)
        # preload included, as in the size rounds: the daemon's whole life up to the final save
        out.update(daemon.logged_stalls())
        return out

    def run(self) -> dict[str, Any]:
        a = self.args
        results: dict[str, Any] = {"meta": self.meta(), "sizes": {}, "notes": self.notes}
        for size in a.size_list:
            workload = build(size, a.workers, "w")
            rounds: list[dict[str, Any]] = []
            for rnd, spec in self.order():
                if time.time() > self.deadline:
                    self.notes.append(f"N={size}: {spec.name} round {rnd} skipped, --max-seconds reached")
                    continue
                print(f"[bench] N={size} round {rnd} {spec.name} ...", flush=True)
                r = self.size_round(spec, rnd, size, workload)
                rounds.append(r)
                print(
                    "        "
                    + ", ".join(
                        f"{k} p50 {r['calls'][k]['p50_ms']} ms"
                        for k in CALLS
                        if r["calls"][k]["p50_ms"] is not None
                    )
                    + f"; longest loop stall {r['loop_stall_max_ms']} ms "
                    + f"(on CPU {r['loop_stall_on_cpu_max_ms']} ms)",
                    flush=True,
                )
            results["sizes"][str(size)] = {"tasks_loaded": len(workload.tasks), "rounds": rounds}
        if a.throughput_tasks > 0:
            workload = build(a.throughput_tasks, a.throughput_workers, "tp")
            rounds = []
            for rnd, spec in self.order():
                if time.time() > self.deadline:
                    self.notes.append(f"throughput: {spec.name} round {rnd} skipped, --max-seconds reached")
                    continue
                print(f"[bench] throughput round {rnd} {spec.name} ...", flush=True)
                r = self.throughput_round(spec, rnd, workload)
                rounds.append(r)
                print(
                    f"        {r['tasks_per_s']:.1f} tasks/s, get_work p50 {r['get_work_p50_ms']} ms, "
                    f"longest loop stall {r['loop_stall_max_ms']} ms "
                    f"(on CPU {r['loop_stall_on_cpu_max_ms']} ms), "
                    f"errors {r['errors']}, violations {r['violations']}",
                    flush=True,
                )
            results["throughput"] = {
                "workers": a.throughput_workers,
                "tasks_in_graph": len(workload.tasks),
                "cap_s": a.throughput_seconds,
                "rounds": rounds,
            }
        results["meta"]["loadavg_at_end"] = os.getloadavg()
        results["summary"] = self.summary(results)
        return results

    def summary(self, results: dict[str, Any]) -> dict[str, Any]:
        sizes = {}
        for size, block in results["sizes"].items():
            s = summarize_size(block["rounds"])
            s["tasks_loaded"] = block["tasks_loaded"]
            sizes[size] = s
            for call, row in s["calls"].items():
                if row["luigi"]["budget_hit"] or row["ours"]["budget_hit"]:
                    who = [d for d in ("luigi", "ours") if row[d]["budget_hit"]]
                    self.notes.append(
                        f"N={size}: {LABELS[call]} sampling was time-capped for {', '.join(who)} "
                        f"({row['luigi']['n']}/{row['ours']['n']} samples; --call-budget "
                        f"{self.args.call_budget:.0f}s per round)"
                    )
                errs = row["luigi"]["errors"] + row["ours"]["errors"]
                if errs:
                    self.notes.append(f"N={size}: {LABELS[call]}: {errs} failed calls")
            for r in block["rounds"]:
                if r.get("tasks_before_stop") != r.get("tasks_after_restart"):
                    self.notes.append(
                        f"N={size} {r['daemon']} round {r['round']}: {r.get('tasks_before_stop')} "
                        f"tasks before SIGTERM but {r.get('tasks_after_restart')} after restart"
                    )
                if not r["preload"]["complete"] or r["preload"]["errors"]:
                    self.notes.append(
                        f"N={size} {r['daemon']} round {r['round']}: preload incomplete or with "
                        f"errors ({r['preload']['first_error']})"
                    )
                bad = {k: v for k, v in r["checks"].items() if k != "answer_sizes" and v}
                if bad:
                    self.notes.append(
                        f"N={size} {r['daemon']} round {r['round']}: answer check failures {bad}"
                    )
                if r["checks"]["answer_sizes"].get("task_list_pending") == -1:
                    self.notes.append(
                        f"N={size} {r['daemon']} round {r['round']}: task_list(PENDING) answered "
                        "with a count only (over max_shown_tasks)"
                    )
        out: dict[str, Any] = {"sizes": sizes}
        if results.get("throughput", {}).get("rounds"):
            out["throughput"] = summarize_throughput(results["throughput"]["rounds"])
        return out

    def meta(self) -> dict[str, Any]:
        commit = (
            subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or "unknown"
        )
        return {
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "commit": commit,
            "command": "python bench/run.py " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
            "templates": {"luigi": self.args.luigi_cmd, "ours": self.args.ours_cmd},
            "daemons": self.args.daemon_list,
            "rounds": self.args.rounds,
            "workers": self.args.workers,
            "samples": self.args.samples,
            "call_budget_s": self.args.call_budget,
            # Other processes share the machine; the load average says how quiet it was.
            "loadavg_at_start": os.getloadavg(),
        }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if "luigi" in args.daemon_list:
        ensure_luigi_venv(args.luigi_venv)
    runner = Runner(args)
    try:
        results = runner.run()
    except DaemonError as exc:
        print(f"[bench] error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        return 130
    finally:
        runner.cleanup()
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{runner.stamp}.json"
    path.write_text(json.dumps(results, indent=1))
    print("\n".join(console_lines(results)))
    for note in results["notes"]:
        print(f"note: {note}")
    rel = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
    print(f"[bench] results: {rel}")
    if not args.no_docs:
        docs = REPO / "docs" / "performance.md"
        docs.parent.mkdir(exist_ok=True)
        docs.write_text(markdown(results, str(rel)))
        print(f"[bench] table: {docs.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
