"""Per-call latency sampling against one preloaded daemon: the p50/p99 rows of the table."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.wire import RpcClient, RpcError
from bench.workload import BenchTask, Workload, add_task_done, add_task_pending, get_work_args

# Order matters: add_task(new) runs last so task_list(PENDING) still sees at most N pending tasks and
# stays under luigi's default max_shown_tasks (100000) at N = 100k.
CALLS = [
    "ping",
    "get_work",
    "add_task_done",
    "task_list_pending",
    "worker_list",
    "dep_graph",
    "graph",
    "add_task",
]
LABELS = {
    "ping": "ping",
    "add_task": "add_task (new task)",
    "get_work": "get_work",
    "add_task_done": "add_task(status=DONE)",
    "task_list_pending": "task_list(PENDING)",
    "worker_list": "worker_list",
    "dep_graph": "dep_graph (14-node pipeline)",
    "graph": "graph",
}
KEEPALIVE_INTERVAL = 5.0  # real workers ping every second; this only keeps ours from being pruned


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (with fewer than 100 samples p99 is the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100.0 * len(ordered)) - 1)]


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    budget_hit: bool = False  # stopped by the time budget before reaching the requested count
    note: str = ""

    def record_error(self, exc: Exception) -> None:
        self.errors += 1
        self.first_error = self.first_error or str(exc)


def _sample(call: Callable[[int], float | None], count: int, budget: float, deadline: float) -> Samples:
    """Run ``call(i)`` up to ``count`` times within ``budget`` seconds; it returns a duration or None."""
    out = Samples()
    stop_at = min(time.time() + budget, deadline)
    for i in range(count):
        if time.time() > stop_at and len(out.seconds) >= 3:
            out.budget_hit = True
            break
        if time.time() > deadline:  # the overall --max-seconds wins even over the 3-sample minimum
            out.budget_hit = True
            break
        try:
            took = call(i)
        except RpcError as exc:
            out.record_error(exc)
            continue
        if took is not None:
            out.seconds.append(took)
    return out


class KeepAlive:
    """Pings every benchmark worker periodically, as real workers do, so neither daemon times them out."""

    def __init__(self, port: int, workers: list[str]) -> None:
        self._port, self._workers = port, workers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors = 0

    def __enter__(self) -> KeepAlive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        client = RpcClient(self._port, timeout=60)
        while not self._stop.wait(KEEPALIVE_INTERVAL):
            for worker in self._workers:
                try:
                    client.call("ping", {"worker": worker})
                except RpcError:
                    self.errors += 1
        client.close()


def measure_calls(
    port: int, workload: Workload, count: int, budget: float, deadline: float
) -> dict[str, Any]:
    """Sample every call of the table once the graph is loaded; returns Samples plus answer checks."""
    client = RpcClient(port)
    workers = workload.workers
    result: dict[str, Any] = {}
    handed_out: list[str] = []

    def ping(i: int) -> float:
        return client.timed_call("ping", {"worker": workers[i % len(workers)]})[0]

    result["ping"] = _sample(ping, count, budget, deadline)

    # get_work and the DONE report that follows it, alternating like a worker's main loop.
    done = Samples()

    def get_work(i: int) -> float:
        worker = workers[i % len(workers)]
        took, reply = client.timed_call("get_work", get_work_args(worker, []))
        task_id = reply.get("task_id")
        if task_id:
            handed_out.append(task_id)
            try:
                done_took, _ = client.timed_call(
                    "add_task", add_task_done(worker, task_id, reply["task_family"], reply["task_params"])
                )
                done.seconds.append(done_took)
            except RpcError as exc:
                done.record_error(exc)
        return took

    result["get_work"] = _sample(get_work, count, budget * 2, deadline)
    result["add_task_done"] = done
    result[
        "get_work"
    ].note = f"{len(handed_out)} of {len(result['get_work'].seconds)} calls handed out a task"
    duplicates = len(handed_out) - len(set(handed_out))

    sizes: dict[str, int] = {}

    def ui_call(method: str, args: dict[str, Any], key: str) -> Callable[[int], float]:
        def run(i: int) -> float:
            took, reply = client.timed_call(method, args, http_method="GET")
            sizes[key] = len(reply) if isinstance(reply, (dict, list)) else -1
            if isinstance(reply, dict) and set(reply) == {"num_tasks"}:
                sizes[key] = -1  # daemon answered with a count only: over max_shown_tasks
            return took

        return run

    result["task_list_pending"] = _sample(
        ui_call("task_list", {"status": "PENDING", "upstream_status": "", "search": ""}, "task_list_pending"),
        count,
        budget,
        deadline,
    )
    result["worker_list"] = _sample(ui_call("worker_list", {}, "worker_list"), count, budget, deadline)

    wrong_dep_graphs = 0

    def dep_graph(i: int) -> float:
        nonlocal wrong_dep_graphs
        root = workload.roots[(i * 7919) % len(workload.roots)]
        took, reply = client.timed_call(
            "dep_graph", {"task_id": root, "include_done": True}, http_method="GET"
        )
        if not isinstance(reply, dict) or len(reply) != 14:
            wrong_dep_graphs += 1
        return took

    result["dep_graph"] = _sample(dep_graph, count, budget, deadline)

    def graph(i: int) -> float:
        took, reply = client.timed_call("graph", {})
        sizes["graph"] = len(reply) if isinstance(reply, dict) else -1
        return took

    result["graph"] = _sample(graph, count, budget, deadline)

    def add_new(i: int) -> float:
        base = workload.tasks[(i * 14) % len(workload.tasks)]
        probe = BenchTask(
            task_id=f"ProbeReport_{i:06d}_{base.task_id[-10:]}",
            family="ProbeReport",
            params={"date": base.params["date"], "probe": str(i)},
            deps=(workload.roots[i % len(workload.roots)],),
            priority=0,
            owner=workers[i % len(workers)],
        )
        return client.timed_call("add_task", add_task_pending(probe))[0]

    result["add_task"] = _sample(add_new, count, budget, deadline)
    client.close()
    result["checks"] = {
        "duplicate_hand_outs": duplicates,
        "wrong_dep_graph_answers": wrong_dep_graphs,
        "answer_sizes": sizes,
    }
    return result
