"""Server CPU per call of a closed loop of pings: a bare Tornado handler (the floor) and luigid trees.

    python bench/http_floor.py --source before=../old-checkout --source after=. --rounds 2

Each round starts, in turn, a bare Tornado app that answers every ``/api/<method>`` POST with a
fixed small reply, then luigid from each ``--source`` tree (``env PYTHONPATH=<tree> python -m
luigid``). ``--connections`` keep-alive connections (bench/fleet_client.Connection, luigi's wire
format) each send ping after ping; after a 2 s warm-up the daemon's CPU time (every thread,
/proc/<pid>/stat) over ``--seconds`` is divided by the calls answered. The bare app shows what
Tornado's own per-request work costs on this machine, so the rest is luigid's. With
``--http-processes N`` each tree also runs with N front processes (``[server] http_processes``):
its CPU is summed over the scheduler process and the fronts, and the scheduler process's own is
printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.daemon import FLAGS, Daemon, DaemonSpec, front_pids
from bench.fleet import daemon_cpu_seconds, fronts_cpu_seconds
from bench.fleet_client import Connection
from bench.wire import free_port, try_ping
from bench.workload import worker_id

BARE = "bare tornado"


def serve_bare(port: int) -> None:
    import tornado.web

    class Fixed(tornado.web.RequestHandler):
        def post(self, method: str) -> None:
            self.set_header("Content-Type", "application/json")
            self.finish(b'{"response": {"rpc_messages": []}}')

    async def main() -> None:
        tornado.web.Application([(r"/api/(.*)", Fixed)]).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


async def _pinger(port: int, index: int, stop: float, counts: list[int]) -> None:
    conn = Connection(port)
    raw = conn.request("ping", {"worker": worker_id("floor", index)})
    done = 0
    try:
        while time.time() < stop:
            await conn.exchange(raw)
            done += 1
    finally:
        conn.close()
        counts.append(done)


def measure(port: int, pid: int, connections: int, seconds: float) -> dict[str, float]:
    fronts = front_pids(pid)

    async def run() -> tuple[int, float, tuple[float, ...], tuple[float, ...]]:
        warm: list[int] = []
        await asyncio.gather(*(_pinger(port, i, time.time() + 2.0, warm) for i in range(connections)))
        before = (*daemon_cpu_seconds(pid), *fronts_cpu_seconds(fronts))
        started = time.time()
        counts: list[int] = []
        await asyncio.gather(*(_pinger(port, i, started + seconds, counts) for i in range(connections)))
        after = (*daemon_cpu_seconds(pid), *fronts_cpu_seconds(fronts))
        return sum(counts), time.time() - started, before, after

    calls, wall, before, after = asyncio.run(run())
    user, system, fronts_user, fronts_system = (b - a for a, b in zip(before, after, strict=True))
    own = user + system
    cpu = own + fronts_user + fronts_system
    return {
        "calls_per_s": calls / wall,
        "cores": cpu / wall,
        "ms_per_call": 1000 * cpu / calls if calls else float("nan"),
        "kernel_share": (system + fronts_system) / cpu if cpu else 0.0,
        "fronts": len(fronts),
        "scheduler_ms_per_call": 1000 * own / calls if calls else float("nan"),
    }


def one(name: str, tree: Path | None, connections: int, seconds: float, fronts: int = 1) -> dict[str, float]:
    rundir = Path(tempfile.mkdtemp(prefix="http-floor-"))
    try:
        if tree is None:
            port = free_port()
            proc = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port)])
            deadline = time.time() + 30
            while not try_ping(port, "probe") and time.time() < deadline:
                time.sleep(0.05)
            try:
                return measure(port, proc.pid, connections, seconds)
            finally:
                proc.terminate()
                proc.wait(30)
        template = f"env PYTHONPATH={tree} {{python}} -m luigid {FLAGS}"  # env execs: same pid
        config = f"[server]\nhttp_processes = {fronts}\n" if fronts > 1 else ""
        daemon = Daemon(DaemonSpec(name, template, config), rundir, rundir)
        daemon.start()
        try:
            daemon.wait_ready(60)
            assert daemon.proc is not None
            return measure(daemon.port, daemon.proc.pid, connections, seconds)
        finally:
            daemon.terminate(30)
            daemon.kill()
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", action="append", default=[], help="name=tree of luigid (repeatable)")
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--http-processes", type=int, default=1, help="also run each tree with N fronts")
    p.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.serve_bare:
        serve_bare(a.serve_bare)
        return 0
    sources: list[tuple[str, Path | None, int]] = [(BARE, None, 1)]
    for item in a.source:
        name, sep, tree = item.partition("=")
        if not sep or not Path(tree, "luigid").is_dir():
            p.error(f"--source: expected name=<tree holding luigid/>, got {item!r}")
        sources.append((name, Path(tree).resolve(), 1))
        if a.http_processes > 1:
            sources.append((f"{name}+{a.http_processes} fronts", Path(tree).resolve(), a.http_processes))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in sources}
    for rnd in range(1, a.rounds + 1):
        for name, tree, fronts in sources:
            r = one(name, tree, a.connections, a.seconds, fronts)
            results[name].append(r)
            alone = f", scheduler process {r['scheduler_ms_per_call']:.3f} ms" if r["fronts"] else ""
            print(
                f"round {rnd} {name:20s} {r['calls_per_s']:7.0f} calls/s, {r['cores']:.2f} cores, "
                f"{r['ms_per_call']:.3f} ms CPU per call{alone} ({r['kernel_share']:.0%} in the kernel)",
                flush=True,
            )
    for name, rows in results.items():
        mean = sum(r["ms_per_call"] for r in rows) / len(rows)
        alone = ""
        if rows and rows[0]["fronts"]:
            alone = f" (scheduler process {sum(r['scheduler_ms_per_call'] for r in rows) / len(rows):.3f} ms)"
        print(f"{name:20s} mean {mean:.3f} ms CPU per call{alone} over {len(rows)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
