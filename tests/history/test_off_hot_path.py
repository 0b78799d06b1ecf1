"""A hung, failing or missing database never holds the event loop, never fails an RPC, never grows memory."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from luigid.config import SchedulerConfig
from luigid.scheduler import Scheduler
from tests.history.support import (
    HistoryFactory,
    hanging_url,
    make_task,
    read_tables,
    run_once,
    tables_locked,
)
from tests.support.wait import wait_for

DEADLINE = 60.0


def test_hung_database_never_holds_the_event_loop(make_history: HistoryFactory, db_url: str) -> None:
    queue_size = 50
    history = make_history(hanging_url(db_url), queue_size=queue_size, batch_size=10)
    run_once(history, make_task("Warmup_1"))  # tables exist, the writer is idle
    assert history.flush(timeout=30)
    written_before = history.written

    scheduler = Scheduler(SchedulerConfig(record_task_history=True), task_history_impl=history)
    with tables_locked(db_url, reads_too=True):
        # The writer takes the next batch and blocks inside its transaction.
        run_once(history, make_task("Stuck_1"))
        wait_for(
            lambda: len(history._queue) == 0 and history._writer.in_flight == 3,
            DEADLINE,
            "writer blocked on the lock",
        )

        ticks = 0
        results: dict[str, object] = {}

        async def heartbeat(stop: asyncio.Event) -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        async def scheduler_traffic() -> None:
            # Same thread as the lock holder: a call that waited for the database would never return.
            for i in range(100):
                scheduler.add_task(worker="w1", task_id=f"Job_{i}", family="Job", params={"i": str(i)})
                await asyncio.sleep(0)
            for _ in range(100):
                reply = scheduler.get_work(worker="w1", host="box-1")
                scheduler.add_task(worker="w1", task_id=reply["task_id"], family="Job", status="DONE")
                await asyncio.sleep(0)
            results["pending"] = scheduler.task_list("PENDING", "")

        async def main() -> None:
            stop = asyncio.Event()
            beat = asyncio.ensure_future(heartbeat(stop))
            await asyncio.wait_for(scheduler_traffic(), timeout=DEADLINE)
            stop.set()
            await beat

        done = threading.Event()

        def run_main() -> None:
            asyncio.run(main())
            done.set()

        worker = threading.Thread(target=run_main, daemon=True)
        worker.start()
        worker.join(DEADLINE)
        assert done.is_set(), "scheduler calls did not complete while the database was held"
        assert ticks > 0
        assert results["pending"] == {}

        # 100 scheduled + 100 started + 100 done events; only queue_size fit, the rest were dropped.
        assert history.written == written_before
        assert history.queue_depth == queue_size + 3
        assert history.dropped == 300 - queue_size
        assert history.write_failures == 0

    # Released: the blocked batch and the queued events are written, nothing else was lost.
    assert history.flush(timeout=DEADLINE)
    assert history.queue_depth == 0
    assert history.written == written_before + 3 + queue_size
    assert len(read_tables(db_url)["task_events"]) == history.written


def test_page_reads_on_a_hung_database_do_not_block_the_loop(
    make_history: HistoryFactory, db_url: str
) -> None:
    history = make_history(hanging_url(db_url))
    run_once(history, make_task("Warmup_1"))
    assert history.flush(timeout=30)

    async def main() -> list[str]:
        pending = asyncio.ensure_future(history.read(history.runs_by_name, "Ingest"))
        order = []
        for _ in range(5):
            await asyncio.sleep(0.01)
            order.append("loop ran")
        assert not pending.done()
        release.set()
        runs = await asyncio.wait_for(pending, timeout=DEADLINE)
        order.append(f"read {len(runs)} runs")
        return order

    release = threading.Event()
    with tables_locked(db_url, reads_too=True):
        outcome: list[list[str]] = []
        thread = threading.Thread(target=lambda: outcome.append(asyncio.run(main())), daemon=True)
        thread.start()
        release.wait(DEADLINE)
    thread.join(DEADLINE)
    assert outcome == [["loop ran"] * 5 + ["read 1 runs"]]


def test_failing_writes_are_counted_logged_and_dropped(
    make_history: HistoryFactory, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    history = make_history()
    run_once(history, make_task("Warmup_1"))
    assert history.flush(timeout=30)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        if db_url.startswith("sqlite"):
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON task_events "
                    "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$"
                )
            )
            conn.execute(
                sa.text("CREATE TRIGGER refuse BEFORE INSERT ON task_events EXECUTE FUNCTION refuse()")
            )
    engine.dispose()

    caplog.set_level(logging.WARNING, logger="luigid.history")
    run_once(history, make_task("Doomed_1"))  # the scheduler's calls return normally
    assert history.flush(timeout=DEADLINE)
    assert history.write_failures == 3  # three attempts at the batch
    assert history.dropped == 3  # then its three events were given up
    assert any("disk on fire" in r.getMessage() for r in caplog.records)
    # the transaction was rolled back each time: no half-written run
    assert [r[1] for r in read_tables(db_url)["tasks"]] == ["Warmup_1"]


def test_unreachable_database_bounds_memory_then_recovers(
    make_history: HistoryFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="luigid.history")
    folder = tmp_path / "not-yet"
    url = f"sqlite:///{folder / 'history.db'}"
    history = make_history(url, queue_size=20, batch_size=5)
    wait_for(lambda: history.write_failures >= 1, DEADLINE, "a failed attempt at the missing database")
    assert any("could not create the task history tables" in r.getMessage() for r in caplog.records)

    for i in range(30):
        history.task_scheduled(make_task(f"Q_{i}"))
    assert history.queue_depth == 20
    assert history.dropped == 10
    assert any("queue is full" in r.getMessage() for r in caplog.records)

    folder.mkdir()
    assert history.flush(timeout=DEADLINE)
    assert [r[1] for r in read_tables(url)["tasks"]] == [f"Q_{i}" for i in range(20)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stop_with_a_dead_database_drops_instead_of_waiting(
    make_history: HistoryFactory, tmp_path: Path
) -> None:
    history = make_history(f"sqlite:///{tmp_path / 'missing' / 'h.db'}")
    wait_for(lambda: history.write_failures >= 1, DEADLINE, "a failed attempt")
    for i in range(5):
        history.task_scheduled(make_task(f"Q_{i}"))
    assert history.stop(timeout=DEADLINE) is True
    assert history.queue_depth == 0
    assert history.dropped == 5
