"""In-process cost of each scheduler call at N tasks (no HTTP): a profiling aid.

    python bench/profile_scheduler.py --tasks 100000 [--cprofile get_work]

Builds DAG pipelines of 14 tasks the way luigi workers add them (8 workers, priorities,
resources on some tasks), then times each call. The side-by-side comparison with luigi's
daemon over HTTP is bench/run.py; this one isolates the scheduler's own cost.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from luigid.config import SchedulerConfig
from luigid.core import gcpause
from luigid.core.rpc import RPC_METHODS, Fragments, dumps
from luigid.scheduler import Scheduler

PIPELINE = 14
WORKERS = 8


def build(n_tasks: int, by_worker: bool = False) -> tuple[Scheduler, list[list[str]]]:
    """Pipelines dealt to workers round-robin; added interleaved, or (``by_worker``) each
    worker's all at once in turn, as bench/run.py's preload does: then one worker's ready
    tasks all rank ahead of the next one's, which get_work has to walk past."""
    sched = Scheduler(SchedulerConfig(state_path="/tmp/unused.pickle"), resources={"db": 4, "gpu": 2})
    pipelines = []
    count = n_tasks // PIPELINE
    order: Iterable[int] = range(count)
    if by_worker:
        order = [p for w in range(WORKERS) for p in range(w, count, WORKERS)]
    for p in order:
        worker = f"worker-{p % WORKERS}"
        ids = [f"Step{i}_p{p}_{i:02d}" for i in range(PIPELINE)]
        for i, task_id in enumerate(ids):
            deps = [ids[i - 1]] if i else []
            if i == PIPELINE - 1:
                deps = ids[1 : PIPELINE - 1]  # the last step joins many
            resources = {"db": 1} if i % 5 == 0 else ({"gpu": 1} if i == 7 else {})
            sched.add_task(
                task_id=task_id,
                status="PENDING",
                runnable=True,
                deps=deps,
                new_deps=[],
                expl=None,
                resources=resources,
                priority=p % 10,
                family=f"Step{i}",
                module="pipelines",
                params={"p": str(p), "i": str(i)},
                param_visibilities={},
                accepts_messages=False,
                assistant=False,
                tracking_url=None,
                worker=worker,
                batchable=False,
                retry_policy_dict={},
                owners=[],
            )
        pipelines.append(ids)
    for w in range(WORKERS):
        sched.add_worker(f"worker-{w}", {"workers": 1, "host": "h", "pid": w})
    return sched, pipelines


def served(reply: Any) -> int:
    """What the server does with a streamed reply, minus the sending: every piece made and
    encoded (with the collector paused, as RpcHandler does). Returns the bytes made."""
    if not isinstance(reply, Fragments):
        return len(dumps(reply))
    made = 0
    with gcpause.paused():
        for piece in reply:
            if piece:
                made += len(piece if isinstance(piece, bytes) else dumps(piece))
    return made


def streamed(sched: Scheduler, method: str, **arguments: Any) -> Any:
    """The reply as the server gets it (pieces for a streamed method): see RpcSpec.invoke."""
    return RPC_METHODS[method].invoke(sched, arguments)


def timeit(label: str, fn: Callable[[], Any], repeat: int) -> None:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"{label:34s} p50 {statistics.median(samples):9.3f} ms   p99 {p99:9.3f} ms   (n={repeat})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--cprofile", help="profile this call instead of timing all")
    parser.add_argument(
        "--by-worker", action="store_true", help="add each worker's pipelines in turn, as bench/run.py does"
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    sched, pipelines = build(args.tasks, args.by_worker)
    print(f"built {args.tasks} tasks in {time.perf_counter() - t0:.1f}s")
    counter = iter(range(10**9))

    def cycle() -> None:
        reply = sched.get_work(worker=f"worker-{next(counter) % WORKERS}", host="h", current_tasks=[])
        if reply.get("task_id"):
            sched.add_task(task_id=reply["task_id"], status="DONE", worker=reply.get("worker", "x"))

    calls: dict[str, tuple[Callable[[], Any], int]] = {
        "ping": (lambda: sched.ping(worker="worker-0"), 200),
        "get_work": (lambda: sched.get_work(worker="worker-1", host="h", current_tasks=[]), 50),
        "count_pending": (lambda: sched.count_pending(worker="worker-2"), 50),
        "add_task(DONE)": (
            lambda: sched.add_task(
                task_id=pipelines[next(counter) % len(pipelines)][0], status="DONE", worker="worker-3"
            ),
            200,
        ),
        "worker_list": (lambda: sched.worker_list(), 10),
        # streamed replies: as the server makes them (not decoded back, as in-process calls are)
        "dep_graph(14 nodes)": (lambda: served(streamed(sched, "dep_graph", task_id=pipelines[5][-1])), 20),
        "task_list(PENDING)": (lambda: served(streamed(sched, "task_list", status="PENDING")), 5),
        "graph": (lambda: served(streamed(sched, "graph")), 5),
        # a whole round, as prune() would have done it before rounds were sliced
        "prune": (lambda: sched.prune_slice(sys.maxsize), 5),
    }
    if args.cprofile:
        fn, repeat = calls[args.cprofile]
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(repeat):
            fn()
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(18)
        return
    for label, (fn, repeat) in calls.items():
        timeit(label, fn, repeat)
    timeit("get_work+add_task(DONE) cycle", cycle, 100)


if __name__ == "__main__":
    main()
