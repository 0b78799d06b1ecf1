"""task_list(PENDING) and graph over HTTP at N tasks, daemons side by side: a profiling aid.

    python bench/big_replies.py --tasks 100000 --source new=. --source old=/path/to/checkout [--luigi]

``--source NAME=PATH`` runs our daemon from the source tree at PATH (put first on PYTHONPATH), so
two versions can be compared in one run (``--config NAME=FILE``: that one reads FILE as its
luigi.cfg); ``--luigi`` adds luigi 3.8.1's daemon (``--luigi-cmd``, as in bench/run.py).
Each daemon is preloaded once the way bench/run.py does it, and its state file kept in
bench/runs/big-replies/ (``--fresh`` redoes it); every round restarts each daemon from
its file, in turn, keeps the preloading workers alive (so replies list them, as in bench/run.py)
and times the two calls as bench/run.py does (the client's clock, to the last byte of the reply,
the UI's GET for task_list). The daemon's CPU time per call (utime + stime from
/proc) is printed too: on a shared machine it is steadier than the wall time. So are RSS before
and after the calls (what the replies leave behind) and, for ours, the longest event-loop stall
the daemon logged.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import FLAGS, LUIGI_TEMPLATE, Daemon, DaemonSpec, ensure_luigi_venv
from bench.latency import KeepAlive
from bench.preload import Preload
from bench.wire import RpcClient
from bench.workload import Workload, build

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / "runs" / "big-replies"
CALLS = {
    "task_list(PENDING)": ("task_list", {"status": "PENDING", "upstream_status": "", "search": ""}, "GET"),
    "graph": ("graph", {}, "POST"),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--source", action="append", default=[], metavar="NAME=PATH", help="our daemon from PATH")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="the --source NAME daemon reads this luigi.cfg (e.g. another [scheduler] reply_cache_tasks)",
    )
    p.add_argument("--luigi", action="store_true", help="also luigi 3.8.1's daemon")
    p.add_argument("--luigi-cmd", default=LUIGI_TEMPLATE)
    p.add_argument("--luigi-venv", type=Path, default=BENCH / ".venv-luigi")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--samples", type=int, default=9, help="calls of each per round (luigi's: at most 3)")
    p.add_argument("--fresh", action="store_true", help="preload again instead of reusing saved states")
    args = p.parse_args(argv)
    configs = dict(item.partition("=")[::2] for item in args.config)
    args.daemons = []
    for item in args.source:
        name, _, path = item.partition("=")
        if not name or not path or name == "luigi":
            p.error(f"--source: expected NAME=PATH (NAME not 'luigi'), got {item!r}")
        config = configs.pop(name, None)
        env = f"env LUIGI_CONFIG_PATH={Path(config).resolve()} " if config else ""
        args.daemons.append((name, env + "{python} -m luigid " + FLAGS, str(Path(path).resolve())))
    if configs:
        p.error(f"--config: no --source named {next(iter(configs))!r}")
    if args.luigi:
        args.daemons.append(("luigi", args.luigi_cmd, None))
    if not args.daemons:
        p.error("nothing to run: give --source and/or --luigi")
    return args


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def rss_mb(daemon: Daemon) -> float:
    return daemon.rss_bytes() / 2**20


def start(name: str, template: str, source: str | None, rundir: Path, luigi_venv: Path) -> Daemon:
    daemon = Daemon(DaemonSpec(name, template), rundir, luigi_venv)
    saved = os.environ.get("PYTHONPATH")
    if source is not None:
        os.environ["PYTHONPATH"] = source
    try:
        daemon.start()
    finally:
        if source is not None:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
    daemon.wait_ready(300)
    return daemon


def saved_state(args: argparse.Namespace, name: str, template: str, source: str | None) -> Path:
    """The state file of this daemon preloaded with --tasks tasks, made on first use."""
    cached = CACHE / f"{name}-{args.tasks}.state"
    if cached.exists() and not args.fresh:
        return cached
    rundir = CACHE / f"preload-{name}"
    shutil.rmtree(rundir, ignore_errors=True)
    daemon = start(name, template, source, rundir, args.luigi_venv)
    try:
        workload = build(args.tasks, 8, "w")
        loaded = Preload(daemon.port, workload, 4, time.time() + 3600).collect()
        print(f"[{name}] preloaded {loaded.added} tasks in {loaded.seconds:.0f}s ({loaded.errors} errors)")
    finally:
        daemon.terminate(300)
    shutil.copy(daemon.state_path, cached)
    shutil.rmtree(rundir, ignore_errors=True)
    return cached


def measure(
    args: argparse.Namespace, name: str, template: str, source: str | None, state: Path, workload: Workload
) -> dict:
    rundir = CACHE / f"run-{name}"
    shutil.rmtree(rundir, ignore_errors=True)
    (rundir / "state").mkdir(parents=True)
    shutil.copy(state, rundir / "state" / "state.pickle")
    daemon = start(name, template, source, rundir, args.luigi_venv)
    assert daemon.proc is not None
    out: dict = {"rss_before_mb": rss_mb(daemon)}
    client = RpcClient(daemon.port)
    # the workers that scheduled the tasks are alive, as in bench/run.py: pinged at once (their
    # last contact in the state file is old) and then every few seconds, so that no prune drops
    # them, and every task lists its worker as in the benchmark's replies
    for worker in workload.workers:
        client.call("ping", {"worker": worker})
    try:
        with KeepAlive(daemon.port, workload.workers):
            timings(args, daemon, client, out)
        out["rss_after_mb"] = rss_mb(daemon)
        client.close()
    finally:
        daemon.terminate(300)
        out.update(daemon.logged_stalls())  # ours only: the longest the event loop was held
        shutil.rmtree(rundir, ignore_errors=True)
    return out


def timings(args: argparse.Namespace, daemon: Daemon, client: RpcClient, out: dict) -> None:
    """Wall and daemon CPU milliseconds of each call, into ``out``."""
    assert daemon.proc is not None
    samples = args.samples if daemon.spec.name != "luigi" else min(3, args.samples)
    for label, (method, call_args, http_method) in CALLS.items():
        _, reply = client.timed_call(method, call_args, http_method)  # warm-up, and a check
        if len(reply) < args.tasks // 2:
            raise SystemExit(f"[{daemon.spec.name}] {method}: {len(reply)} entries; state not loaded?")
        wall, cpu = [], []
        for _ in range(samples):
            before = cpu_ms(daemon.proc.pid)
            took, _ = client.timed_call(method, call_args, http_method)
            cpu.append(cpu_ms(daemon.proc.pid) - before)
            wall.append(took * 1000)
        out[label] = (wall, cpu)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.luigi:
        ensure_luigi_venv(args.luigi_venv)
    CACHE.mkdir(parents=True, exist_ok=True)
    states = {name: saved_state(args, name, template, source) for name, template, source in args.daemons}
    workload = build(args.tasks, 8, "w")
    pooled: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for rnd in range(1, args.rounds + 1):
        for name, template, source in args.daemons:
            result = measure(args, name, template, source, states[name], workload)
            stall = result["loop_stall_max_ms"]
            held = f", longest loop stall {stall:.0f} ms" if stall is not None else ""
            rss = f"RSS {result['rss_before_mb']:.0f} -> {result['rss_after_mb']:.0f} MB"
            print(f"round {rnd} {name}: {rss}{held}")
            for label in CALLS:
                wall, cpu = result[label]
                into = pooled.setdefault((name, label), ([], []))
                into[0].extend(wall)
                into[1].extend(cpu)
                print(f"  {label:20s} wall {' '.join(f'{w:.0f}' for w in wall)} ms")
    print(f"\nN = {args.tasks}, {args.rounds} rounds pooled: median (min) in ms")
    for label in CALLS:
        for name, _, _ in args.daemons:
            wall, cpu = pooled[(name, label)]
            print(
                f"{label:20s} {name:10s} wall {statistics.median(wall):7.0f} ({min(wall):5.0f})"
                f"   daemon CPU {statistics.median(cpu):7.0f} ({min(cpu):5.0f})   n={len(wall)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
