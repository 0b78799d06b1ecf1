"""One client process of the fleet benchmark: many simulated luigi workers on one asyncio loop.

Started by bench/fleet.py as ``python -m bench.fleet_client`` with its plan as JSON on stdin; it
prints its figures as one JSON object on stdout. Each simulated worker behaves like a luigi 3.8.1
worker with default settings, over the same wire format (requests' headers, a form-encoded
``data=<json>`` body on keep-alive connections):

- a pinger that sends ``ping`` and then waits ``[core] worker-ping-interval`` (1 s), on a
  connection of its own (luigi's keep-alive thread shares a requests session with the main thread,
  whose pool gives each thread its own connection);
- a main loop: ``add_worker``, then ``add_task`` for a 5-task chain (root first, as a worker walks
  ``requires()``), then ``get_work``; a task handed out "runs" for an exponential time (10 s mean)
  and is reported with ``add_task(status=DONE)``; when get_work hands out nothing while tasks are
  still pending the worker polls again after 1 s (``[worker] wait_interval``); once its chain is
  done it schedules the next one.

A call counts as failed on anything but an HTTP 200 with a ``response`` key, or when no reply came
within 10 s (luigi's ``[core] rpc-connect-timeout``, which requests applies to the read too).
The client is written to stay cheap (prebuilt request bytes, JSON decoded only where the worker
needs the reply) and measures its own CPU and event-loop lag, so a slow figure can be told apart
from a busy client.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import sys
import time
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bench.workload import BenchTask, add_task_done, add_task_pending, get_work_args, worker_id, worker_info

CHAIN = 5
FAMILY = "FleetStep"
KINDS = ("ping", "get_work", "add_task", "add_task(DONE)", "add_worker")


class CallFailed(Exception):
    pass


#: what a call that got no usable reply raises (a timeout is counted apart)
BROKEN = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, CallFailed, ValueError)


@dataclass
class Plan:
    port: int
    first: int  # index of this process's first worker
    count: int  # workers in this process
    t0: float  # epoch: workers start between t0 and t0 + ramp
    ramp: float
    window_start: float  # epoch: latencies of calls started in [window_start, stop) are kept
    stop: float  # epoch: no new call after this
    task_mean: float = 10.0
    ping_interval: float = 1.0
    wait_interval: float = 1.0
    timeout: float = 10.0
    disconnect_delay: float = 60.0  # the scheduler's worker_disconnect_delay
    seed: int = 0


@dataclass
class Stats:
    samples: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    calls_in_window: int = 0
    calls_total: int = 0
    failures: int = 0
    failures_in_window: int = 0
    first_failures: list[str] = field(default_factory=list)
    tasks_done: int = 0
    unknown_tasks: int = 0  # get_work handed out a task this worker never scheduled
    chains_done: int = 0
    max_contact_gap: float = 0.0
    workers_timed_out: int = 0  # workers that went longer than disconnect_delay without a reply
    loop_lag: list[float] = field(default_factory=list)


def chain_tasks(worker: str, index: int, cycle: int) -> list[BenchTask]:
    """A worker's cycle-th chain, root first: step 4 needs step 3 ... needs step 0."""
    ids = [f"{FAMILY}_{index}_{cycle}_{step}" for step in range(CHAIN)]
    tasks = [
        BenchTask(
            ids[step],
            FAMILY,
            {"worker": str(index), "cycle": str(cycle), "step": str(step)},
            (ids[step - 1],) if step else (),
            0,
            worker,
        )
        for step in range(CHAIN)
    ]
    return tasks[::-1]


class Connection:
    """One keep-alive HTTP/1.1 connection speaking like python-requests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.head = (
            f"Host: 127.0.0.1:{port}\r\nUser-Agent: python-requests/2.32.3\r\n"
            "Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def request(self, method: str, args: dict[str, Any]) -> bytes:
        body = urlencode({"data": json.dumps(args)}).encode()
        return (
            f"POST /api/{method} HTTP/1.1\r\n".encode()
            + self.head
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, raw: bytes) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:
            raise CallFailed(f"HTTP {status} reply without a length")
        if headers.get("connection", "").lower() == "close":
            self.close()
        encoding = headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if status != 200:
            raise CallFailed(f"HTTP {status}: {body[:200]!r}")
        if not body.startswith(b'{"response"'):
            raise CallFailed(f"reply without a response: {body[:200]!r}")
        return body


async def _within(seconds: float, exchange: Coroutine[Any, Any, bytes]) -> bytes:
    """The exchange, or asyncio.TimeoutError after ``seconds``. Python 3.11's asyncio.timeout
    costs no task per call (the client's CPU is part of the measure); 3.10 has only wait_for."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:
        return await asyncio.wait_for(exchange, seconds)
    async with timeout(seconds):
        return await exchange


class Fleet:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stats = Stats()
        self.rng = random.Random(plan.seed)
        self.last_contact: dict[int, float] = {}
        self.timed_out: set[int] = set()

    def _note_failure(self, kind: str, started: float, exc: BaseException) -> None:
        s = self.stats
        s.failures += 1
        if started >= self.plan.window_start:
            s.failures_in_window += 1
        if len(s.first_failures) < 5:
            s.first_failures.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])

    def _contact(self, index: int, now: float) -> None:
        gap = now - self.last_contact[index]
        if gap > self.stats.max_contact_gap:
            self.stats.max_contact_gap = gap
        if gap > self.plan.disconnect_delay:
            self.timed_out.add(index)
        self.last_contact[index] = now

    async def call(self, conn: Connection, index: int, kind: str, raw: bytes) -> bytes:
        """One call, retried every second until it succeeds (each failure counted); raises
        CancelledError once the run is over."""
        plan, stats = self.plan, self.stats
        while True:
            started_wall = time.time()
            if started_wall >= plan.stop:
                raise asyncio.CancelledError
            started = time.perf_counter()
            try:
                body = await _within(plan.timeout, conn.exchange(raw))
            except asyncio.TimeoutError:  # before OSError, its base class from Python 3.11
                conn.close()
                self._note_failure(kind, started_wall, TimeoutError(f"no reply within {plan.timeout:g} s"))
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                CallFailed,
                ValueError,
            ) as exc:
                conn.close()
                self._note_failure(kind, started_wall, exc)
            else:
                elapsed = time.perf_counter() - started
                stats.calls_total += 1
                if started_wall >= plan.window_start:
                    stats.calls_in_window += 1
                    stats.samples[kind].append(elapsed * 1000.0)
                self._contact(index, time.time())
                return body
            await asyncio.sleep(1.0)

    async def pinger(self, index: int, worker: str) -> None:
        conn = Connection(self.plan.port)
        raw = conn.request("ping", {"worker": worker})
        try:
            while True:
                await self.call(conn, index, "ping", raw)
                await asyncio.sleep(self.plan.ping_interval)
        finally:
            conn.close()

    async def worker(self, index: int, start: float) -> None:
        plan, stats = self.plan, self.stats
        await asyncio.sleep(max(0.0, start - time.time()))
        worker = worker_id("fleet", index)
        self.last_contact[index] = time.time()
        pinger = asyncio.ensure_future(self.pinger(index, worker))
        conn = Connection(plan.port)
        get_work = conn.request("get_work", get_work_args(worker, []))
        try:
            cycle = 0
            chain = chain_tasks(worker, index, cycle)
            info = {"worker": worker, "info": worker_info(worker, chain[0].task_id)}
            await self.call(conn, index, "add_worker", conn.request("add_worker", info))
            while True:
                by_id = {t.task_id: t for t in chain}
                for task in chain:
                    await self.call(conn, index, "add_task", conn.request("add_task", add_task_pending(task)))
                while True:
                    reply = json.loads(await self.call(conn, index, "get_work", get_work))["response"]
                    task_id = reply.get("task_id")
                    if task_id is None:
                        if not reply.get("n_pending_tasks"):
                            break  # the chain is done
                        await asyncio.sleep(plan.wait_interval)
                        continue
                    done = by_id.get(task_id)
                    if done is None:
                        stats.unknown_tasks += 1
                        continue
                    await asyncio.sleep(self.rng.expovariate(1.0 / plan.task_mean))
                    args = add_task_done(worker, done.task_id, done.family, done.params)
                    await self.call(conn, index, "add_task(DONE)", conn.request("add_task", args))
                    stats.tasks_done += 1
                stats.chains_done += 1
                cycle += 1
                chain = chain_tasks(worker, index, cycle)
        except asyncio.CancelledError:
            pass
        finally:
            pinger.cancel()
            conn.close()

    async def lag_probe(self) -> None:
        """How late the loop wakes up a 100 ms sleeper: a busy client shows here."""
        while time.time() < self.plan.stop:
            before = time.perf_counter()
            await asyncio.sleep(0.1)
            if time.time() >= self.plan.window_start:
                self.stats.loop_lag.append((time.perf_counter() - before - 0.1) * 1000.0)

    async def run(self) -> dict[str, Any]:
        plan = self.plan
        starts = [plan.t0 + self.rng.uniform(0.0, plan.ramp) for _ in range(plan.count)]
        workers = [asyncio.ensure_future(self.worker(plan.first + i, starts[i])) for i in range(plan.count)]
        probe = asyncio.ensure_future(self.lag_probe())
        await asyncio.sleep(max(0.0, plan.window_start - time.time()))
        cpu_start = _cpu()
        await asyncio.sleep(max(0.0, plan.stop - time.time()))
        cpu_window = _cpu() - cpu_start
        window = plan.stop - plan.window_start
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, probe, return_exceptions=True)
        end = time.time()
        s = self.stats
        # the last stretch counts too: a worker silent since its last reply until the end
        for index in list(self.last_contact):
            self._contact(index, min(end, plan.stop))
        s.workers_timed_out = len(self.timed_out)
        out = dict(vars(s))
        out["cpu_window_s"] = cpu_window
        out["window_s"] = window
        out["workers"] = plan.count
        out["workers_started"] = len(self.last_contact)
        return out


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main() -> int:
    plan = Plan(**json.loads(sys.stdin.read()))
    result = asyncio.run(Fleet(plan).run())
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
