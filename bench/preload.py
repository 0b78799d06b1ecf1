"""Loading the graph into a daemon the way real workers do: one keep-alive connection per worker,
add_task for every task it schedules (root first), then add_worker with its info.

Workers are spread over a few forked processes so client-side JSON and HTTP overhead overlaps with
the (single-threaded) server's work.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass

from bench.wire import RpcClient, RpcError
from bench.workload import BenchTask, Workload, add_task_pending, worker_info


@dataclass
class PreloadResult:
    seconds: float
    added: int
    errors: int
    first_error: str | None
    complete: bool


def _load_workers(port: int, jobs: list[tuple[str, list[BenchTask]]], deadline: float, out: object) -> None:
    added = errors = 0
    first_error: str | None = None
    for worker, tasks in jobs:
        client = RpcClient(port)
        for task in tasks:
            if time.time() > deadline:
                break
            try:
                client.call("add_task", add_task_pending(task))
                added += 1
            except RpcError as exc:
                errors += 1
                first_error = first_error or str(exc)
        try:
            client.call(
                "add_worker",
                {"worker": worker, "info": worker_info(worker, tasks[0].task_id if tasks else None)},
            )
        except RpcError as exc:
            errors += 1
            first_error = first_error or str(exc)
        client.close()
    out.send((added, errors, first_error))  # type: ignore[attr-defined]


class Preload:
    """Forks the loader processes on construction; ``collect`` waits for them.

    Split in two so the caller can start its keep-alive thread after the fork, not before it.
    """

    def __init__(self, port: int, workload: Workload, procs: int, deadline: float) -> None:
        self.expected = len(workload.tasks)
        self.deadline = deadline
        owned: dict[str, list[BenchTask]] = {w: [] for w in workload.workers}
        for task in workload.tasks:
            owned[task.owner].append(task)
        procs = max(1, min(procs, len(workload.workers)))
        shares: list[list[tuple[str, list[BenchTask]]]] = [[] for _ in range(procs)]
        for i, worker in enumerate(workload.workers):
            shares[i % procs].append((worker, owned[worker]))
        ctx = multiprocessing.get_context("fork")  # children inherit the task list instead of unpickling it
        self.started = time.perf_counter()
        self.children = []
        for share in shares:
            parent_end, child_end = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_load_workers, args=(port, share, deadline, child_end), daemon=True)
            proc.start()
            self.children.append((proc, parent_end))

    def collect(self) -> PreloadResult:
        added = errors = 0
        first_error: str | None = None
        for proc, conn in self.children:
            if conn.poll(max(1.0, self.deadline - time.time() + 30.0)):
                a, e, msg = conn.recv()
                added, errors = added + a, errors + e
                first_error = first_error or msg
            else:
                errors += 1
                first_error = first_error or "preload process did not report back in time"
                proc.terminate()
            proc.join(timeout=10)
        seconds = time.perf_counter() - self.started
        return PreloadResult(seconds, added, errors, first_error, complete=added == self.expected)
