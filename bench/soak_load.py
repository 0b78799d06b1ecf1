"""The soak's load: simulated luigi workers that come and go, plus one web-UI poller.

Each simulated worker lives like a luigi 3.8.1 worker running ``luigi.build`` with default
settings: it add_task's its fresh pipeline (root first, full payloads), add_worker's, pings on a
second connection every ``ping_interval`` (luigi's KeepAliveThread), and loops get_work ->
"run" (sleep) -> add_task(DONE or FAILED) until get_work hands it nothing, then leaves (luigi's
default keep_alive = False). A fraction crash mid-task instead: they stop talking, so the daemon
has to time them out and fail their running task. Each slot then starts a new worker with a new
id, so workers and tasks keep coming and going and only pruning keeps the daemon's state bounded.

One process runs ``slots`` workers as asyncio tasks; every loop is bounded by the plan's deadline
and by an iteration count.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from bench.soak_client import CallFailed, SoakConnection
from bench.workload import (
    BenchTask,
    add_task_done,
    add_task_pending,
    get_work_args,
    pipeline,
    worker_id,
    worker_info,
)

UI_STATUSES = ("PENDING", "RUNNING", "DONE", "FAILED", "DISABLED")
#: a worker life has ~3 calls per task; this cap only guards against a runaway loop
MAX_CALLS_PER_LIFE = 2_000
MAX_FIRST_ERRORS = 10


@dataclass(frozen=True)
class LoadPlan:
    """What one load process does (picklable; the parent builds one per process)."""

    port: int
    proc_index: int
    slots: int
    start_at: float  # epoch seconds: all processes begin together
    deadline: float  # epoch seconds: no new call starts after this
    task_seconds: float  # mean simulated run() time (exponential, capped at 5x)
    pipelines_per_worker: int
    fail_rate: float
    crash_rate: float
    ping_interval: float
    rejoin_seconds: float  # a slot's next worker joins within this many seconds
    ramp_seconds: float  # first workers join spread over this window
    viewer_interval: float  # > 0: this process also polls like the web UI
    timeout: float
    max_lives_per_slot: int


@dataclass
class StateSample:
    at: float
    tasks: dict[str, int]  # per status, as task_list reports them
    workers: int


@dataclass
class LoadStats:
    latencies: dict[str, array] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)
    workers_started: int = 0
    workers_left: int = 0
    workers_crashed: int = 0
    tasks_scheduled: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    connections: int = 0
    state: list[StateSample] = field(default_factory=list)

    #: the plain counts above, summed across load processes and reported as they are
    COUNTERS = (
        "workers_started",
        "workers_left",
        "workers_crashed",
        "tasks_scheduled",
        "tasks_done",
        "tasks_failed",
        "connections",
    )

    def ok(self, label: str, seconds: float) -> None:
        self.latencies.setdefault(label, array("d")).append(seconds)

    def failed(self, label: str, message: str) -> None:
        self.errors[label] = self.errors.get(label, 0) + 1
        if len(self.first_errors) < MAX_FIRST_ERRORS:
            self.first_errors.append(f"{time.strftime('%H:%M:%S')} {message}")


class LoadProcess:
    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.stats = LoadStats()
        self.rng = random.Random(plan.proc_index * 7919 + int(plan.start_at))
        self._next_pipeline = 0
        self._connections: list[SoakConnection] = []

    def _connection(self) -> SoakConnection:
        conn = SoakConnection(self.plan.port, self.plan.timeout)
        self._connections.append(conn)
        return conn

    async def _release(self, *conns: SoakConnection) -> None:
        for conn in conns:
            self.stats.connections += conn.connects
            self._connections.remove(conn)
            await conn.close()

    async def _call(
        self, conn: SoakConnection, method: str, args: dict[str, Any], label: str, http_method: str = "POST"
    ) -> tuple[bool, Any]:
        try:
            took, reply = await conn.call(method, args, http_method)
        except CallFailed as exc:
            self.stats.failed(label, str(exc))
            return False, None
        self.stats.ok(label, took)
        return True, reply

    def _fresh_tasks(self, owner: str) -> list[BenchTask]:
        tasks: list[BenchTask] = []
        for _ in range(self.plan.pipelines_per_worker):
            # ids unique per process and run: process index in the high digits
            tasks += pipeline(self.plan.proc_index * 10_000_000 + self._next_pipeline, owner)
            self._next_pipeline += 1
        return tasks

    def _before_deadline(self) -> bool:
        return time.time() < self.plan.deadline

    async def _pinger(self, conn: SoakConnection, worker: str, stop: asyncio.Event) -> None:
        for _ in range(int((self.plan.deadline - time.time()) / self.plan.ping_interval) + 2):
            try:
                await asyncio.wait_for(stop.wait(), self.plan.ping_interval)
                return
            except asyncio.TimeoutError:
                pass
            if not self._before_deadline():
                return
            await self._call(conn, "ping", {"worker": worker}, "ping")

    async def _life(self, slot: int, generation: int) -> None:
        """One worker from add_task to leaving (or crashing)."""
        plan = self.plan
        worker = worker_id(f"soak{plan.proc_index}", slot * 100_000 + generation)
        tasks = self._fresh_tasks(worker)
        main, keep = self._connection(), self._connection()
        stop = asyncio.Event()
        pinger: asyncio.Task[None] | None = None
        self.stats.workers_started += 1
        crash_at = self.rng.randrange(len(tasks)) if self.rng.random() < plan.crash_rate else None
        try:
            for task in tasks:
                if not self._before_deadline():
                    return
                if (await self._call(main, "add_task", add_task_pending(task), "add_task"))[0]:
                    self.stats.tasks_scheduled += 1
            info = {"worker": worker, "info": worker_info(worker, tasks[0].task_id)}
            await self._call(main, "add_worker", info, "add_worker")
            pinger = asyncio.create_task(self._pinger(keep, worker, stop))
            runs = 0
            for _ in range(MAX_CALLS_PER_LIFE):
                if not self._before_deadline():
                    return
                ok, reply = await self._call(main, "get_work", get_work_args(worker, []), "get_work")
                if not ok:
                    await asyncio.sleep(plan.ping_interval)
                    continue
                task_id = reply.get("task_id")
                if task_id is None:
                    self.stats.workers_left += 1
                    return  # nothing runnable for it: a default luigi worker is done
                if runs == crash_at:
                    self.stats.workers_crashed += 1
                    return  # dies holding a RUNNING task; the daemon must time it out
                runs += 1
                await asyncio.sleep(min(self.rng.expovariate(1 / plan.task_seconds), 5 * plan.task_seconds))
                payload = add_task_done(worker, task_id, reply["task_family"], reply["task_params"])
                label = "add_task(DONE)"
                if self.rng.random() < plan.fail_rate:
                    payload.update(status="FAILED", expl=json.dumps("Traceback: simulated failure"))
                    label = "add_task(FAILED)"
                if (await self._call(main, "add_task", payload, label))[0]:
                    if label == "add_task(DONE)":
                        self.stats.tasks_done += 1
                    else:
                        self.stats.tasks_failed += 1
        finally:
            stop.set()
            if pinger is not None:
                await pinger
            await self._release(main, keep)

    async def _slot(self, slot: int) -> None:
        plan = self.plan
        await asyncio.sleep(self.rng.uniform(0, plan.ramp_seconds))
        for generation in range(plan.max_lives_per_slot):
            if not self._before_deadline():
                return
            await self._life(slot, generation)
            await asyncio.sleep(self.rng.uniform(0, plan.rejoin_seconds))

    async def _viewer(self) -> None:
        """Polls the way the visualiser does; these reads also make the daemon prune, as in luigi."""
        plan = self.plan
        conn = self._connection()
        try:
            for _ in range(int((plan.deadline - time.time()) / plan.viewer_interval) + 2):
                if not self._before_deadline():
                    return
                counts: dict[str, int] = {}
                for status in UI_STATUSES:
                    args = {"status": status, "upstream_status": "", "search": ""}
                    ok, reply = await self._call(conn, "task_list", args, "task_list", "GET")
                    if ok and isinstance(reply, dict):
                        counts[status] = reply["num_tasks"] if set(reply) == {"num_tasks"} else len(reply)
                ok, workers = await self._call(conn, "worker_list", {}, "worker_list", "GET")
                await self._call(conn, "resource_list", {}, "resource_list", "GET")
                if ok and len(counts) == len(UI_STATUSES):
                    self.stats.state.append(StateSample(time.time(), counts, len(workers)))
                await asyncio.sleep(plan.viewer_interval)
        finally:
            await self._release(conn)

    async def run(self) -> LoadStats:
        await asyncio.sleep(max(0.0, self.plan.start_at - time.time()))
        jobs = [self._slot(slot) for slot in range(self.plan.slots)]
        if self.plan.viewer_interval > 0:
            jobs.append(self._viewer())
        await asyncio.gather(*jobs)
        return self.stats


def run_load_process(plan: LoadPlan, results: Any) -> None:
    """Process entry point: run the plan, send the stats back through ``results`` (a Pipe end)."""
    stats = asyncio.run(LoadProcess(plan).run())
    results.send(stats)
    results.close()
