"""Many workers running get_work -> add_task(DONE) at once, with a check of what the daemon handed out.

Each worker is its own forked process with its own keep-alive connection. Timestamps come from
time.monotonic(), which is one system-wide clock on Linux, so events of different workers compare.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any

from bench.latency import percentile
from bench.wire import RpcClient, RpcError
from bench.workload import RESOURCES_BY_FAMILY, Workload, add_task_done, get_work_args

IDLE_RETRY = 0.02  # a worker whose tasks are all blocked on a busy resource asks again after this
PROBE_INTERVAL = 0.01
PROBE_WORKER = "bench-stall-probe"


@dataclass
class Handout:
    task_id: str
    worker: str
    asked: float  # get_work sent
    got: float  # get_work reply received
    done_sent: float
    done_acked: float


def _worker_loop(port: int, worker: str, start_at: float, stop_at: float, out: Any) -> None:
    client = RpcClient(port, timeout=max(5.0, stop_at - start_at + 30))
    handouts: list[tuple[str, float, float, float, float]] = []
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    time.sleep(max(0.0, start_at - time.monotonic()))
    while time.monotonic() < stop_at:
        try:
            asked = time.monotonic()
            reply = client.call("get_work", get_work_args(worker, []))
            got = time.monotonic()
            latencies.append(got - asked)
            task_id = reply.get("task_id")
            if not task_id:
                if not reply.get("n_pending_tasks"):
                    break  # nothing left for this worker
                time.sleep(IDLE_RETRY)
                continue
            done_sent = time.monotonic()
            client.call(
                "add_task", add_task_done(worker, task_id, reply["task_family"], reply["task_params"])
            )
            handouts.append((task_id, asked, got, done_sent, time.monotonic()))
        except (RpcError, AttributeError, KeyError) as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            if errors > 50:
                break
    client.close()
    out.send((worker, handouts, latencies, errors, first_error))


def _ping_probe(port: int, start_at: float, stop_at: float, finished: Any, out: Any) -> None:
    """Pings on its own connection while the workers run: its slowest answer bounds the longest stall."""
    client = RpcClient(port, timeout=max(5.0, stop_at - start_at + 30))
    latencies: list[float] = []
    errors = 0
    time.sleep(max(0.0, start_at - time.monotonic()))
    while time.monotonic() < stop_at and not finished.is_set():
        try:
            latencies.append(client.timed_call("ping", {"worker": PROBE_WORKER})[0])
        except RpcError:
            errors += 1
        time.sleep(PROBE_INTERVAL)
    client.close()
    out.send((latencies, errors))


def run_throughput(port: int, workload: Workload, cap_seconds: float) -> dict[str, Any]:
    """Release one process per workload worker at the same instant; collect and check what happened."""
    ctx = multiprocessing.get_context("fork")
    start_at = time.monotonic() + 1.0 + 0.05 * len(workload.workers)
    stop_at = start_at + cap_seconds
    children = []
    for worker in workload.workers:
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker_loop, args=(port, worker, start_at, stop_at, child_end), daemon=True
        )
        proc.start()
        children.append((proc, parent_end))
    finished = ctx.Event()
    probe_end, probe_child_end = ctx.Pipe(duplex=False)
    probe = ctx.Process(
        target=_ping_probe, args=(port, start_at, stop_at, finished, probe_child_end), daemon=True
    )
    probe.start()
    handouts: list[Handout] = []
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    for proc, conn in children:
        if conn.poll(max(1.0, stop_at - time.monotonic() + 60)):
            worker, items, lats, errs, msg = conn.recv()
            handouts.extend(Handout(t, worker, a, g, s, d) for t, a, g, s, d in items)
            latencies.extend(lats)
            errors += errs
            first_error = first_error or msg
        else:
            errors += 1
            first_error = first_error or "a worker process did not report back"
            proc.terminate()
        proc.join(timeout=10)
    finished.set()
    pings: list[float] = []
    if probe_end.poll(60):
        pings, probe_errors = probe_end.recv()
        errors += probe_errors
    probe.join(timeout=10)
    last_ack = max((h.done_acked for h in handouts), default=start_at)
    elapsed = max(1e-9, min(last_ack, stop_at) - start_at) if handouts else cap_seconds
    return {
        "workers": len(workload.workers),
        "tasks_in_graph": len(workload.tasks),
        "completed": len(handouts),
        "all_completed": len(handouts) == len(workload.tasks),
        "elapsed_s": elapsed,
        "cap_s": cap_seconds,
        "tasks_per_s": len(handouts) / elapsed,
        "get_work_calls": len(latencies),
        "get_work_p50_ms": percentile(latencies, 50) * 1000 if latencies else None,
        "get_work_p99_ms": percentile(latencies, 99) * 1000 if latencies else None,
        "ping_under_load_p50_ms": percentile(pings, 50) * 1000 if pings else None,
        "ping_under_load_max_ms": max(pings) * 1000 if pings else None,
        "errors": errors,
        "first_error": first_error,
        "violations": check_handouts(workload, handouts),
    }


def check_handouts(workload: Workload, handouts: list[Handout]) -> dict[str, Any]:
    """Count only definite violations: orderings the client clocks prove, never mere overlaps."""
    tasks = {t.task_id: t for t in workload.tasks}
    seen: dict[str, Handout] = {}
    duplicates, unknown, foreign, early = [], [], [], []
    for h in handouts:
        if h.task_id in seen:
            duplicates.append(h.task_id)
        seen.setdefault(h.task_id, h)
    for h in handouts:
        task = tasks.get(h.task_id)
        if task is None:
            unknown.append(h.task_id)
            continue
        if task.owner != h.worker:
            foreign.append(h.task_id)
        for dep in task.deps:
            dep_done = seen.get(dep)
            # Handed out before the dependency's DONE report was even sent: certainly too early.
            if dep_done is None or h.got < dep_done.done_sent:
                early.append(h.task_id)
                break
    # Unconfigured resources have capacity 1: two holders at one time is a violation.
    over_resource = 0
    for family in RESOURCES_BY_FAMILY:
        spans = sorted(
            (h for h in handouts if h.task_id in tasks and tasks[h.task_id].family == family),
            key=lambda h: h.got,
        )
        for prev, cur in itertools.pairwise(spans):
            if cur.asked > prev.got and cur.got < prev.done_sent:
                over_resource += 1
    return {
        "handed_out_twice": len(duplicates),
        "before_deps_done": len(early),
        "to_non_owner": len(foreign),
        "unknown_task": len(unknown),
        "resource_over_capacity": over_resource,
        "examples": (duplicates + early + unknown)[:5],
    }
