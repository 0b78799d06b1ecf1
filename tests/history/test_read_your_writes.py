"""History pages show every event reported before the request, as luigi's (written synchronously) do.

The writer thread writes events in batches, up to ``flush_interval`` seconds late; a page
request first waits (off the event loop, at most ``read_wait`` seconds) until the writer has
written every event queued before the request arrived. These tests give the writer a long
``flush_interval`` so that, without that wait, the pages would certainly lag behind; with the
default 1 s they lag most of the time (issue 15: "History pages lag behind finished runs").
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from luigid.config import SchedulerConfig
from luigid.history import DbTaskHistory
from luigid.scheduler import Scheduler
from luigid.web.app import app as luigid_app
from tests.history.support import (
    HistoryFactory,
    hanging_url,
    make_task,
    run_once,
    run_python,
    tables_locked,
)
from tests.support.cli import call
from tests.support.daemon import Luigid, clean_env
from tests.support.serving import ServerThread
from tests.support.wait import wait_for

HTML = {"Accept": "text/html"}
#: a writer that waits this long before writing a partial batch lags behind every page
LONG_FLUSH = 60.0
DEADLINE = 60.0


def serving(scheduler: Scheduler) -> ServerThread:
    """luigid's whole application (RPCs and history pages) served in this process."""
    return ServerThread(luigid_app(scheduler))


def run_task(port: int, task_id: str, family: str, worker: str = "w1") -> None:
    """Schedule, start and finish one task over HTTP, as a worker does: PENDING, RUNNING, DONE."""
    call(port, "add_task", worker=worker, task_id=task_id, family=family, params={"n": "1"})
    assert call(port, "get_work", worker=worker, host="box-1")["task_id"] == task_id
    call(port, "add_task", worker=worker, task_id=task_id, family=family, status="DONE")


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=DEADLINE, **kwargs)


def scheduler_for(history: DbTaskHistory) -> Scheduler:
    return Scheduler(SchedulerConfig(record_task_history=True), task_history_impl=history)


def test_pages_show_the_run_that_just_finished(make_history: HistoryFactory) -> None:
    history = make_history(flush_interval=LONG_FLUSH)
    assert history.flush(timeout=30)  # tables made; the writer now sleeps until its next flush
    server = serving(scheduler_for(history))
    with server as base:
        run_task(server.port, "Extract_1", "Extract")
        run_task(server.port, "Load_1", "Load")
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
        call(server.port, "add_task", worker="w1", task_id="Broken_1", family="Broken")
        assert call(server.port, "get_work", worker="w1", host="box-1")["task_id"] == "Broken_1"
        call(
            server.port,
            "add_task",
            worker="w1",
            task_id="Broken_1",
            family="Broken",
            status="FAILED",
            expl="boom",
        )
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
def luigid_process(tmp_path: Path) -> Iterator[Luigid]:
    """The luigid daemon recording history in a fresh SQLite file."""
    config = (
        "[scheduler]\nrecord_task_history = true\n\n"
        f"[task_history]\ndb_connection = sqlite:///{tmp_path / 'history.db'}\n"
        f"flush_interval = {LONG_FLUSH}\n"
    )
    daemon = Luigid(tmp_path, config, "--logdir", str(tmp_path / "logs")).start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_real_luigi_worker_then_pages_at_once(luigid_process: Luigid) -> None:
    home = luigid_process.workdir
    env = clean_env(home / "worker.cfg")  # none: luigi's defaults
    env["PIPELINE_OUT"] = str(home)
    ran = json.loads(run_python(LUIGI_PIPELINE, str(luigid_process.port), env=env).strip().splitlines()[-1])
    assert ran["ok"] is True
    base = f"http://127.0.0.1:{luigid_process.port}"

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


def in_background(request: Callable[[], requests.Response]) -> Future[requests.Response]:
    future: Future[requests.Response] = Future()

    def run() -> None:
        try:
            future.set_result(request())
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
    server = serving(scheduler_for(history))
    with server as base:
        with tables_locked(db_url, reads_too=False):
            run_task(server.port, "Held_1", "Held")

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
                call(server.port, "add_task", worker="w2", task_id=f"Busy_{i}", family="Busy")
            for _ in range(30):
                assert call(server.port, "get_work", worker="w2", host="box-2")["task_id"] is not None
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
