"""What ``[scheduler] journal_fsync`` costs a caller: ping and add_task p50 under each policy,
next to the cost of one fsync on the same disk, in one run.

    python bench/fsync_policies.py --rounds 3

Each round starts a fresh daemon per policy (``no``, ``everysec``, ``always``, in turn, so that
a noisy machine spreads over all three), samples ping, add_task of a new task and
add_task(status=DONE) from one keep-alive client, then times ``--samples`` appends with an fsync
each of a luigi-sized record (600 bytes) in the same folder. The table gives each p50 over all
rounds; ``always`` is expected within about one fsync of ``no``. The daemon is this checkout's
(``PYTHONPATH`` is set to it). (Throughput with each policy,
side by side with another tree: ``bench/run.py`` with ``--ours-cmd``, see docs/performance.md.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.daemon import Daemon, DaemonSpec  # noqa: E402

POLICIES = ("no", "everysec", "always")
TEMPLATE = "{python} -m luigid --port {port} --address 127.0.0.1 --state-path {state} --logdir {logdir}"


def fsync_p50(folder: Path, samples: int) -> float:
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    taken = []
    try:
        for _ in range(samples):
            os.write(fd, b"r" * 600)
            started = time.perf_counter()
            os.fsync(fd)
            taken.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(taken)


def sample_calls(daemon: Daemon, samples: int, tag: str) -> dict[str, float]:
    from bench.wire import RpcClient

    client = RpcClient(daemon.port)
    worker = f"bench-{tag}"
    try:
        for _ in range(samples // 3):  # warm up: the connection, and the log file's first blocks
            client.call("ping", {"worker": worker})
        ping = [client.timed_call("ping", {"worker": worker})[0] for _ in range(samples)]
        new = []
        for i in range(samples):
            args = {
                "worker": worker,
                "task_id": f"Probe_{tag}_{i}",
                "family": "Probe",
                "status": "PENDING",
                "params": {"n": str(i)},
                "runnable": True,
            }
            new.append(client.timed_call("add_task", args)[0])
        done = []
        for i in range(samples):
            args = {"worker": worker, "task_id": f"Probe_{tag}_{i}", "status": "DONE"}
            done.append(client.timed_call("add_task", args)[0])
    finally:
        client.close()
    return {
        "ping": statistics.median(ping),
        "add_task": statistics.median(new),
        "add_task_done": statistics.median(done),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    opts = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {p: {} for p in POLICIES}
    fsyncs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="luigid-fsync-bench-", dir=Path(__file__).parent) as scratch:
        root = Path(scratch)
        for round_ in range(opts.rounds):
            for policy in POLICIES:
                rundir = root / f"{policy}-{round_}"
                rundir.mkdir()
                (rundir / "luigi.cfg").write_text(f"[scheduler]\njournal_fsync = {policy}\n")
                daemon = Daemon(
                    DaemonSpec(
                        "ours", f"env PYTHONPATH={ROOT} LUIGI_CONFIG_PATH={rundir / 'luigi.cfg'} " + TEMPLATE
                    ),
                    rundir,
                    root,
                )
                daemon.start()
                try:
                    daemon.wait_ready(30)
                    for name, value in sample_calls(daemon, opts.samples, f"{policy}{round_}").items():
                        results[policy].setdefault(name, []).append(value)
                finally:
                    daemon.terminate(30)
                fsyncs.append(fsync_p50(daemon.state_dir, opts.samples))
                print(
                    f"[bench] round {round_ + 1} {policy}: "
                    + ", ".join(f"{k} {v[-1] * 1e3:.3f} ms" for k, v in results[policy].items()),
                    flush=True,
                )
    print(f"\none fsync (600-byte append), p50 over rounds: {statistics.median(fsyncs) * 1e3:.3f} ms")
    print("p50 (median of round p50s)    " + "".join(f"{p:>12}" for p in POLICIES))
    for name in ("ping", "add_task", "add_task_done"):
        row = "".join(f"{statistics.median(results[p][name]) * 1e3:>9.3f} ms" for p in POLICIES)
        print(f"{name:<30}{row}")
    floor = statistics.median(results["no"]["ping"])
    above = statistics.median(results["always"]["add_task"]) - floor
    print(
        f"add_task with always, above ping with no: {above * 1e3:.3f} ms"
        f" ({above / statistics.median(fsyncs):.2f} fsyncs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
