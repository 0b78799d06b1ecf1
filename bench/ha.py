"""High availability on PostgreSQL: what HA costs, and how long a takeover takes.

One command, from the repository root (PostgreSQL at 127.0.0.1:5432, database ``test``, user
``postgres``; each run uses a fresh schema and drops it):

    python bench/ha.py

1. **Speed, side by side in one run**: the same daemon three ways, one after the other, each
   fresh: HA off with the default ``journal_fsync = everysec``, HA off with ``always`` (every reply
   waits for an fsync, as every HA reply waits for a commit), and HA on (a leader with a standby
   following it, both on this machine). Each gets ``--tasks`` preloaded, then ``--samples``
   add_task calls of new tasks one after another (p50, p95), then ``--throughput-workers``
   processes loop get_work -> add_task(DONE) over a fresh graph (``bench/throughput.py``,
   tasks per second, with its checks of what was handed out).
2. **Takeover**: two HA nodes; ``--kills`` times kill -9 of the leader, then ``--kills`` times
   SIGSTOP (a frozen leader), each time measuring from the signal until the other node answers
   ``/leader`` with 200, and until an add_task sent to it is acknowledged. The killed node is
   restarted (as a standby) and the frozen one continued, and it must step down, each round.

Results: printed, and written to bench/results/ha-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench.latency import KeepAlive, percentile
from bench.preload import Preload
from bench.throughput import run_throughput
from bench.wire import RpcClient, free_port, try_ping
from bench.workload import add_task_pending, build, pipeline

PG = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parents[1]


class Node:
    """One luigid process with its own folder and config."""

    def __init__(self, rundir: Path, config: str) -> None:
        self.rundir = rundir
        rundir.mkdir(parents=True, exist_ok=True)
        (rundir / "luigi.cfg").write_text(config)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Node:
        env = dict(os.environ, LUIGI_CONFIG_PATH=str(self.rundir / "luigi.cfg"))
        env["PYTHONPATH"] = str(ROOT)
        argv = [sys.executable, "-m", "luigid", "--port", str(self.port), "--address", "127.0.0.1"]
        argv += ["--state-path", str(self.rundir / "state.pickle")]
        with open(self.rundir / "luigid.log", "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.rundir, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not try_ping(self.port, "bench-ready", timeout=1.0) and self.leader_status() != 503:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"luigid did not start: see {self.rundir / 'luigid.log'}")
            time.sleep(0.02)
        return self

    def leader_status(self) -> int:
        try:
            with urllib.request.urlopen(self.url + "leader", timeout=1.0) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ha_config(schema: str, name: str, lease: float) -> str:
    return (
        "[ha]\n"
        f"db_connection = {PG}?options=-csearch_path%%3D{schema}\n"
        f"node_name = {name}\nlease_timeout = {lease:g}\n"
        "[scheduler]\nstate_snapshot_interval = 60\n"
    )


def wait_leader(nodes: list[Node], timeout: float = 60.0) -> Node:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None and node.leader_status() == 200:
                return node
        time.sleep(0.01)
    raise SystemExit("no leader")


# ------------------------------------------------------------------------------ speed


def speed(mode: str, node_configs: list[str], rundir: Path, args: argparse.Namespace) -> dict[str, Any]:
    nodes = [Node(rundir / f"{mode}-{i}", config).start() for i, config in enumerate(node_configs)]
    try:
        leader = wait_leader(nodes) if len(nodes) > 1 or "[ha]" in node_configs[0] else nodes[0]
        port = leader.port
        workload = build(args.tasks, 8, f"pre-{mode}")
        loading = Preload(port, workload, 4, time.time() + 600)
        with KeepAlive(port, workload.workers):
            pre = loading.collect()
        client = RpcClient(port, timeout=60)
        latencies = []
        for index in range(args.samples):
            task = pipeline(100_000 + index, "bench-sampler")[-1]
            started = time.perf_counter()
            client.call("add_task", {**add_task_pending(task), "worker": "bench-sampler"})
            latencies.append(time.perf_counter() - started)
        client.close()
        graph = build(args.throughput_tasks, args.throughput_workers, f"tp-{mode}")
        loading = Preload(port, graph, 4, time.time() + 600)
        with KeepAlive(port, graph.workers):
            loading.collect()
        throughput = run_throughput(port, graph, args.throughput_seconds)
        return {
            "mode": mode,
            "preload_s": pre.seconds,
            "preload_errors": pre.errors,
            "add_task_p50_ms": percentile(latencies, 50) * 1000,
            "add_task_p95_ms": percentile(latencies, 95) * 1000,
            "throughput_tasks_per_s": throughput["tasks_per_s"],
            "throughput_completed": throughput["completed"],
            "throughput_errors": throughput["errors"],
            "throughput_violations": throughput["violations"],
            "get_work_p50_ms": throughput["get_work_p50_ms"],
        }
    finally:
        for node in nodes:
            node.stop()


# --------------------------------------------------------------------------- takeover


def takeover(schema: str, rundir: Path, args: argparse.Namespace) -> dict[str, Any]:
    nodes = [Node(rundir / f"takeover-{i}", ha_config(schema, f"n{i}", args.lease)).start() for i in range(2)]
    rounds: dict[str, list[dict[str, float]]] = {"kill -9": [], "SIGSTOP": []}
    try:
        for kind, sig in (("kill -9", signal.SIGKILL), ("SIGSTOP", signal.SIGSTOP)):
            for n in range(args.kills):
                old = wait_leader(nodes)
                other = next(node for node in nodes if node is not old)
                client = RpcClient(old.port, timeout=10)
                client.call("add_task", {**add_task_pending(pipeline(n, "w")[-1]), "worker": "w"})
                client.close()
                # the standby has followed it; a random pause, or the signal would land at the
                # same point of the nodes' tick every round (each round starts from a takeover)
                time.sleep(1.0 + random.random())
                hit = time.monotonic()
                old.signal(sig)
                wait_leader([other], timeout=args.lease + 60)
                leads = time.monotonic() - hit
                client = RpcClient(other.port, timeout=10)
                while True:
                    try:
                        client.call("add_task", {**add_task_pending(pipeline(n, "x")[-1]), "worker": "x"})
                        break
                    except Exception:
                        time.sleep(0.01)
                writes = time.monotonic() - hit
                client.close()
                if sig == signal.SIGKILL:
                    assert old.proc is not None
                    old.proc.wait()
                    old.start()
                else:
                    old.signal(signal.SIGCONT)
                    woke = time.monotonic()
                    while old.leader_status() != 503:
                        time.sleep(0.01)
                    rounds[kind].append(
                        {"leads_s": leads, "writes_s": writes, "steps_down_s": time.monotonic() - woke}
                    )
                    print(
                        f"[ha] {kind} {n + 1}: leads after {leads:.2f}s, writes after {writes:.2f}s",
                        flush=True,
                    )
                    continue
                rounds[kind].append({"leads_s": leads, "writes_s": writes})
                print(
                    f"[ha] {kind} {n + 1}: leads after {leads:.2f}s, writes after {writes:.2f}s", flush=True
                )
    finally:
        for node in nodes:
            node.stop()
    summary: dict[str, Any] = {"lease_timeout": args.lease, "rounds": rounds}
    for kind, items in rounds.items():
        for key in ("leads_s", "writes_s"):
            values = [item[key] for item in items]
            summary[f"{kind} {key} p50"] = percentile(values, 50)
            summary[f"{kind} {key} max"] = max(values)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks preloaded before sampling")
    parser.add_argument("--samples", type=int, default=300, help="add_task calls timed one by one")
    parser.add_argument("--throughput-workers", type=int, default=16)
    parser.add_argument("--throughput-tasks", type=int, default=3000)
    parser.add_argument("--throughput-seconds", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=10, help="takeovers timed per kind; 0 skips them")
    parser.add_argument("--lease", type=float, default=10.0, help="[ha] lease_timeout of the takeover nodes")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    rundir = Path("/tmp") / f"luigid-bench-ha-{stamp}"
    schema = f"bench_ha_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    results: dict[str, Any] = {"started": stamp, "args": vars(args), "cpus": os.cpu_count()}
    try:
        if not args.skip_speed:
            plain = "[scheduler]\nstate_snapshot_interval = 60\njournal_fsync = {}\n"
            results["speed"] = [
                speed("off-everysec", [plain.format("everysec")], rundir, args),
                speed("off-always", [plain.format("always")], rundir, args),
                speed("on", [ha_config(schema, f"s{i}", 10.0) for i in range(2)], rundir, args),
            ]
            for row in results["speed"]:
                print(
                    f"[ha] {row['mode']:>13}: add_task p50 {row['add_task_p50_ms']:.2f} ms "
                    f"p95 {row['add_task_p95_ms']:.2f} ms; {args.throughput_workers} workers "
                    f"{row['throughput_tasks_per_s']:.0f} tasks/s (errors {row['throughput_errors']})",
                    flush=True,
                )
            base = results["speed"][0]["throughput_tasks_per_s"]
            results["throughput_on_vs_off"] = results["speed"][2]["throughput_tasks_per_s"] / base
            print(f"[ha] throughput HA on / HA off (everysec): {results['throughput_on_vs_off']:.2f}")
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
        if args.kills:
            results["takeover"] = takeover(schema, rundir, args)
            for key, value in results["takeover"].items():
                if key.endswith(("p50", "max")):
                    print(f"[ha] {key}: {value:.2f}s")
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    out = ROOT / "bench" / "results" / f"ha-{stamp}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"[ha] results in {out}")


if __name__ == "__main__":
    main()
