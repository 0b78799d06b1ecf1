"""History pages show every event reported before the request, as luigi's (written synchronously) do.

The writer thread writes events in batches, up to ``flush_interval`` seconds late; a page
request first waits (off the event loop, at most ``read_wait`` seconds) until the writer has
written every event queued before the request arrived. These tests give the writer a long
``flush_interval`` so that, without that wait, the pages would certainly lag behind; with the
default 1 s they lag most of the time (issue 15: "History pages lag behind finished runs").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import tornado.httpserver
import tornado.netutil

from luigid.config import SchedulerConfig
from luigid.core.scheduler import Scheduler
from luigid.history import DbTaskHistory
from luigid.web.app import app as luigid_app
from tests.history.conftest import HistoryFactory, make_task, run_once
from tests.processes import free_port, terminate, wait_for

HTML = {"Accept": "text/html"}
#: a writer that waits this long before writing a partial batch lags behind every page
LONG_FLUSH = 60.0
DEADLINE = 60.0


@contextlib.contextmanager
def serving(scheduler: Scheduler) -> Iterator[str]:
    """luigid's whole application (RPCs and history pages) on 127.0.0.1, on its own thread and loop."""
    ready = threading.Event()
    port: list[int] = []
    loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port.append(sockets[0].getsockname()[1])
        server = tornado.httpserver.HTTPServer(luigid_app(scheduler))
        server.add_sockets(sockets)
        ready.set()
        loop.run_forever()
        server.stop()
        loop.run_until_complete(server.close_all_connections())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def rpc(base: str, method: str, **arguments: Any) -> Any:
    """One RPC as luigi's client sends it."""
    reply = requests.post(f"{base}/api/{method}", data={"data": json.dumps(arguments)}, timeout=DEADLINE)
    assert reply.status_code == 200, reply.text
    return reply.json()["response"]


def run_task(base: str, task_id: str, family: str, worker: str = "w1") -> None:
    """Schedule, start and finish one task over HTTP, as a worker does: PENDING, RUNNING, DONE."""
    rpc(base, "add_task", worker=worker, task_id=task_id, family=family, params={"n": "1"})
    assert rpc(base, "get_work", worker=worker, host="box-1")["task_id"] == task_id
    rpc(base, "add_task", worker=worker, task_id=task_id, family=family, status="DONE")


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=DEADLINE, **kwargs)


def scheduler_for(history: DbTaskHistory) -> Scheduler:
    return Scheduler(SchedulerConfig(record_task_history=True), task_history_impl=history)


def test_pages_show_the_run_that_just_finished(make_history: HistoryFactory) -> None:
    history = make_history(flush_interval=LONG_FLUSH)
    assert history.flush(timeout=30)  # tables made; the writer now sleeps until its next flush
    with serving(scheduler_for(history)) as base:
        run_task(base, "Extract_1", "Extract")
        run_task(base, "Load_1", "Load")
        # right after the last DONE, with the writer's next flush a minute away

        recent = get(f"{base}/history")
        assert recent.status_code == 200
        assert "No runs recorded" not in recent.text
        for text in ("Extract_1", "Load_1", "DONE", "box-1"):
            assert text in recent.text
        assert "not yet written" not in recent.text

        families = get(f"{base}/tasklist").text
        assert 'href="tasklist/Extract"' in families and 'href="tasklist/Load"' in families

        by_task_id = get(f"{base}/history/by_task_id/Load_1")
        assert by_task_id.status_code == 200, by_task_id.text
        assert "Run #2 of Load" in by_task_id.text and "DONE" in by_task_id.text

        by_id = get(f"{base}/history/by_id/1")  # a fresh database numbers the runs 1, 2, ...
        assert by_id.status_code == 200, by_id.text
        assert "Run #1 of Extract" in by_id.text

        assert "Load_1" in get(f"{base}/history/by_name/Load").text
        by_params = get(f"{base}/history/by_params/Extract", params={"data": json.dumps({"n": "1"})})
        assert "Extract_1" in by_params.text
        chart = get(f"{base}/tasklist/Load").text
        assert chart.count("<circle") == 1  # the finished run is on the run time chart

        # a failure shows at once too, with the worker's message
        rpc(base, "add_task", worker="w1", task_id="Broken_1", family="Broken")
        assert rpc(base, "get_work", worker="w1", host="box-1")["task_id"] == "Broken_1"
        rpc(base, "add_task", worker="w1", task_id="Broken_1", family="Broken", status="FAILED", expl="boom")
        failed = get(f"{base}/history/by_task_id/Broken_1")
        assert "Run #3 of Broken" in failed.text and "FAILED" in failed.text and "boom" in failed.text
    assert history.written == 9


def test_a_page_at_startup_waits_for_the_tables(make_history: HistoryFactory) -> None:
    history = make_history(flush_interval=LONG_FLUSH)
    with serving(scheduler_for(history)) as base:
        page = get(f"{base}/history")  # the writer may still be creating the tables
    assert page.status_code == 200, page.text
    assert "No runs recorded" in page.text


# -- a real luigid and a real luigi worker --

LUIGI_PIPELINE = """
import json, os, sys
import luigi

OUT = os.environ["PIPELINE_OUT"]

class Extract(luigi.Task):
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "extract"))
    def run(self):
        with self.output().open("w") as f:
            f.write("x")

class Report(luigi.Task):
    day = luigi.Parameter()
    def requires(self):
        return Extract()
    def output(self):
        return luigi.LocalTarget(os.path.join(OUT, "report-" + self.day))
    def run(self):
        with self.output().open("w") as f:
            f.write("r")

last = Report(day="2024-05-01")
ok = luigi.build(
    [last], scheduler_host="127.0.0.1", scheduler_port=int(sys.argv[1]), workers=1, log_level="WARNING"
)
print(json.dumps({"ok": ok, "first": Extract().task_id, "last": last.task_id}))
"""


@pytest.fixture
def luigid_process(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The luigid daemon (``python -m luigid``) recording history in a fresh SQLite file."""
    port = free_port()
    history_db = tmp_path / "history.db"
    config = tmp_path / "luigid.cfg"
    config.write_text(
        "[scheduler]\nrecord_task_history = true\n\n"
        f"[task_history]\ndb_connection = sqlite:///{history_db}\nflush_interval = {LONG_FLUSH}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_CONFIG")}
    env["LUIGI_CONFIG_PATH"] = str(config)
    argv = [sys.executable, "-m", "luigid", "--port", str(port), "--address", "127.0.0.1"]
    argv += ["--state-path", str(tmp_path / "state.pickle"), "--logdir", str(tmp_path / "logs")]
    with open(tmp_path / "luigid.out", "wb") as out:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        def answers() -> bool:
            assert proc.poll() is None, (tmp_path / "luigid.out").read_text()
            try:
                return requests.head(f"http://127.0.0.1:{port}/", timeout=2).status_code < 500
            except requests.ConnectionError:
                return False

        wait_for(answers, timeout=30, what="luigid to answer")
        yield port, tmp_path
    finally:
        terminate(proc)


def test_real_luigi_worker_then_pages_at_once(luigid_process: tuple[int, Path]) -> None:
    port, home = luigid_process
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_CONFIG")}
    env["LUIGI_CONFIG_PATH"] = str(home / "worker.cfg")  # none: luigi's defaults
    env["PIPELINE_OUT"] = str(home)
    worker = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LUIGI_PIPELINE), str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    ran = json.loads(worker.stdout.strip().splitlines()[-1])
    assert ran["ok"] is True
    base = f"http://127.0.0.1:{port}"

    recent = get(f"{base}/history")
    assert recent.status_code == 200
    assert "No runs recorded" not in recent.text
    assert ran["first"] in recent.text and ran["last"] in recent.text
    families = get(f"{base}/tasklist").text
    assert 'href="tasklist/Extract"' in families and 'href="tasklist/Report"' in families
    by_task_id = get(f"{base}/history/by_task_id/{ran['last']}")
    assert by_task_id.status_code == 200, by_task_id.text
    assert "DONE" in by_task_id.text and "2024-05-01" in by_task_id.text
    for run_id in (1, 2):
        assert get(f"{base}/history/by_id/{run_id}").status_code == 200


# -- a database that does not take writes --


@contextlib.contextmanager
def writes_held(db_url: str) -> Iterator[None]:
    """Another session holds a write lock on the history tables: writes wait for it, reads do not."""
    if db_url.startswith("sqlite"):
        holder = sqlite3.connect(db_url.split("///", 1)[1].split("?", 1)[0], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # RESERVED: other writers wait, readers go on
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    else:
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            conn.execute(sa.text("LOCK TABLE tasks, task_parameters, task_events IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                conn.rollback()
        engine.dispose()


def hanging_url(db_url: str) -> str:
    # SQLite would give up on a lock after 5 s by default; make the writer wait as long as it is held.
    return f"{db_url}?timeout=600" if db_url.startswith("sqlite") else db_url


def in_background(call: Callable[[], requests.Response]) -> Future[requests.Response]:
    future: Future[requests.Response] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def test_slow_database_pages_wait_at_most_read_wait_and_rpcs_do_not_wait(
    make_history: HistoryFactory, db_url: str
) -> None:
    history = make_history(hanging_url(db_url), flush_interval=LONG_FLUSH)
    run_once(history, make_task("Warmup_1", family="Warmup"))
    assert history.flush(timeout=30)
    with serving(scheduler_for(history)) as base:
        with writes_held(db_url):
            run_task(base, "Held_1", "Held")

            # A short read_wait: the page waits for it, then answers with what is written, and says so.
            history.read_wait = 1.0
            started = time.monotonic()
            missing = get(f"{base}/history/by_task_id/Held_1")
            waited = time.monotonic() - started
            assert missing.status_code == 404
            error = missing.json()["error"]
            assert error.startswith(
                "no runs recorded for task id 'Held_1' (3 events recorded before this request"
            )
            assert "may be missing here" in error
            assert 1.0 <= waited < 1.0 + 20  # the bound is a wait, not a hang (generous for a loaded box)
            page = get(f"{base}/history", headers=HTML)
            assert page.status_code == 200
            assert "Warmup_1" in page.text and "Held_1" not in page.text
            assert "3 events recorded before this request were not yet written" in page.text

            # A long read_wait: the page waits for the writer, while RPCs are answered meanwhile.
            history.read_wait = DEADLINE
            page_future = in_background(lambda: get(f"{base}/history/by_task_id/Held_1"))
            wait_for(
                lambda: history._writer.mark._waiters, timeout=30, what="the page to wait for the writer"
            )
            for i in range(30):
                rpc(base, "add_task", worker="w2", task_id=f"Busy_{i}", family="Busy")
            for _ in range(30):
                assert rpc(base, "get_work", worker="w2", host="box-2")["task_id"] is not None
            assert not page_future.done(), "the page should still be waiting for the held database"
        # Released: the writer commits, and the waiting page shows the run, with nothing missing.
        shown = page_future.result(timeout=DEADLINE)
        assert shown.status_code == 200, shown.text
        assert "Held_1" in shown.text and "DONE" in shown.text
        assert "may be missing" not in shown.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_dropped_batches_release_the_waiting_reads(make_history: HistoryFactory, db_url: str) -> None:
    history = make_history(flush_interval=LONG_FLUSH)
    run_once(history, make_task("Warmup_1"))
    assert history.flush(timeout=30)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TRIGGER refuse BEFORE INSERT ON task_events "
                "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
        )
    engine.dispose()
    run_once(history, make_task("Doomed_1"))

    # The writer tries three times (pausing 1 s, then 2 s) and gives the batch up; the read,
    # willing to wait a minute, goes on then: nothing before it is still waiting to be written.
    started = time.monotonic()
    assert asyncio.run(history.caught_up(timeout=DEADLINE)) == 0
    assert time.monotonic() - started < DEADLINE / 2
    assert history.dropped == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_stopped_history_does_not_keep_reads_waiting(make_history: HistoryFactory, tmp_path: Path) -> None:
    history = make_history(f"sqlite:///{tmp_path / 'missing' / 'h.db'}", flush_interval=LONG_FLUSH)
    wait_for(lambda: history.write_failures >= 1, timeout=30, what="a failed attempt")
    run_once(history, make_task("Lost_1"))
    assert history.stop(timeout=DEADLINE) is True  # drops the queue: the database is gone
    started = time.monotonic()
    assert asyncio.run(history.caught_up(timeout=DEADLINE)) == 0
    assert time.monotonic() - started < DEADLINE / 2
