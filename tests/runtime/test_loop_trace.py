"""Naming what held the event loop (``[scheduler] stall_trace``): the callback that used the
most CPU since the monitor's last tick, by what it ran. Blocks are real work on the CPU;
only what is named is asserted (and generous lower bounds)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import threading
import time
from collections.abc import Iterator

import pytest
import tornado.httpclient
import tornado.web
from tornado.ioloop import PeriodicCallback

from luigid.runtime.loop_trace import LoopTrace
from luigid.runtime.stalls import StallMonitor

BLOCK = 0.1


@pytest.fixture
def trace() -> Iterator[LoopTrace]:
    made = LoopTrace()
    made.install()
    try:
        yield made
    finally:
        made.uninstall()


def spin(seconds: float) -> None:
    """Busy on the CPU, as a slow request computing would be."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def hold_the_loop() -> None:
    spin(BLOCK)


def test_a_callback_that_waits_off_the_cpu_is_not_the_culprit(trace: LoopTrace) -> None:
    def sleeps() -> None:
        time.sleep(BLOCK)  # the loop is held, but not by work: the machine, or a blocking wait

    async def scenario() -> tuple[float, str]:
        trace.take()
        asyncio.get_running_loop().call_soon(sleeps)
        asyncio.get_running_loop().call_soon(spin, 0.02)
        await asyncio.sleep(0.01)
        return trace.take()

    assert asyncio.run(scenario())[1] == "spin"


def test_a_plain_callback_is_named_by_its_function(trace: LoopTrace) -> None:
    async def scenario() -> tuple[float, str]:
        trace.take()
        asyncio.get_running_loop().call_soon(hold_the_loop)
        await asyncio.sleep(0.01)
        return trace.take()

    took, name = asyncio.run(scenario())
    assert name == "hold_the_loop"
    assert took >= BLOCK
    assert trace.take()[1] == ""  # taken: what ran since (the loop closing) was short


def test_a_task_step_is_named_by_its_coroutine(trace: LoopTrace) -> None:
    async def builds_a_big_reply() -> None:
        spin(BLOCK)

    async def scenario() -> str:
        trace.take()
        await asyncio.create_task(builds_a_big_reply())
        return trace.take()[1]

    assert asyncio.run(scenario()).endswith("builds_a_big_reply")


def test_a_periodic_callback_is_named_by_what_it_calls(trace: LoopTrace) -> None:
    class Server:
        def snapshot_tick(self) -> None:
            spin(BLOCK)

    async def scenario() -> str:
        periodic = PeriodicCallback(Server().snapshot_tick, 10)
        trace.take()
        periodic.start()
        await asyncio.sleep(BLOCK + 0.05)
        periodic.stop()
        return trace.take()[1]

    assert asyncio.run(scenario()).endswith("Server.snapshot_tick")


def test_a_request_is_named_by_its_method_and_path(trace: LoopTrace) -> None:
    class Slow(tornado.web.RequestHandler):
        def get(self) -> None:
            spin(BLOCK)
            self.write("done")

    async def scenario() -> str:
        server = tornado.web.Application([(r"/api/task_list", Slow)]).listen(0, address="127.0.0.1")
        port = next(iter(server._sockets.values())).getsockname()[1]
        trace.take()
        reply = await tornado.httpclient.AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/api/task_list")
        assert reply.body == b"done"
        server.stop()
        return trace.take()[1]

    assert asyncio.run(scenario()).endswith("_execute GET /api/task_list")


def test_garbage_collection_inside_a_callback_is_told(trace: LoopTrace) -> None:
    def collects() -> None:
        keep: list[list[int]] = [[] for _ in range(300_000)]  # tracked objects a full collection must walk
        gc.collect()
        del keep

    async def scenario() -> str:
        trace.take()
        asyncio.get_running_loop().call_soon(collects)
        await asyncio.sleep(0.01)
        return trace.take()[1]

    name = asyncio.run(scenario())
    assert name.startswith("test_garbage_collection_inside_a_callback_is_told.<locals>.collects")
    assert "(garbage collection " in name and ", the slowest of generation 2: " in name


def test_a_long_callback_is_named_with_where_it_stood() -> None:
    # the name says which request; the sample says where in it (a sweep, a scan step...)
    trace = LoopTrace(home=os.path.dirname(os.path.abspath(__file__)))
    trace.install()
    try:

        async def scenario() -> str:
            trace.take()
            asyncio.get_running_loop().call_soon(hold_the_loop)
            asyncio.get_running_loop().call_soon(spin, 0.005)  # too short to be sampled
            await asyncio.sleep(0.01)
            return trace.take()[1]

        name = asyncio.run(scenario())
    finally:
        trace.uninstall()
    assert re.match(
        r"hold_the_loop at test_loop_trace\.py:\d+ spin < test_loop_trace\.py:\d+ hold_the_loop", name
    )
    assert wait_gone()


def wait_gone() -> bool:
    """The sampling thread leaves within one of its intervals once the trace is uninstalled."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not any(t.name == "stall-trace-stacks" for t in threading.enumerate()):
            return True
        time.sleep(0.01)
    return False


def test_uninstall_puts_the_loop_back() -> None:
    original = asyncio.Handle._run
    trace = LoopTrace()
    trace.install()
    assert asyncio.Handle._run is not original
    trace.uninstall()
    assert asyncio.Handle._run is original
    assert trace._on_gc not in gc.callbacks

    async def scenario() -> None:
        asyncio.get_running_loop().call_soon(hold_the_loop)
        await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert trace.take() == (0.0, "")  # nothing was timed


def test_the_monitor_names_the_culprit_of_a_stall(trace: LoopTrace, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> StallMonitor:
        monitor = StallMonitor(trace=trace)
        monitor.start()
        await asyncio.sleep(monitor.interval * 3)
        asyncio.get_running_loop().call_soon(hold_the_loop)
        await asyncio.sleep(monitor.interval * 3)
        monitor.stop()
        return monitor

    with caplog.at_level(logging.INFO, logger="luigi.server"):
        monitor = asyncio.run(scenario())
    assert monitor.longest_culprit.startswith("hold_the_loop, ")
    assert "; held by hold_the_loop, " in monitor.summary()
    messages = [r.getMessage() for r in caplog.records]
    assert any("held" in m and m.split(" by ")[-1].startswith("hold_the_loop, ") for m in messages)
