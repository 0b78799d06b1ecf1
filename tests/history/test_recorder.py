"""What the recorder writes: luigi's rows for every event, one row per run, failure messages."""

from __future__ import annotations

import datetime

from luigid.config import SchedulerConfig
from luigid.history import DbTaskHistory
from luigid.history.events import MAX_MESSAGE_CHARS
from luigid.scheduler import Scheduler
from tests.history.support import HistoryFactory, make_task, read_tables, run_once


def test_one_run_writes_luigi_rows(make_history: HistoryFactory, db_url: str) -> None:
    history = make_history()
    task = make_task("Ingest_2024_01_01_abc", params={"date": "2024-01-01", "region": "eu"})
    before = datetime.datetime.now() - datetime.timedelta(seconds=1)
    run_once(history, task, host="box-1")
    assert history.flush(timeout=30)

    rows = read_tables(db_url)
    assert [r[1:] for r in rows["tasks"]] == [("Ingest_2024_01_01_abc", "Ingest", "box-1")]
    record_id = rows["tasks"][0][0]
    assert rows["task_parameters"] == [(record_id, "date", "2024-01-01"), (record_id, "region", "eu")]
    assert [(r[1], r[2]) for r in rows["task_events"]] == [
        (record_id, "PENDING"),
        (record_id, "RUNNING"),
        (record_id, "DONE"),
    ]
    stamps = [r[3] for r in rows["task_events"]]
    assert stamps == sorted(stamps)
    # naive local time, as luigi writes it
    assert all(before <= ts <= datetime.datetime.now() for ts in stamps)
    assert rows["task_event_messages"] == []
    assert history.metrics()["written"] == 3
    assert history.write_failures == 0 and history.dropped == 0 and history.queue_depth == 0


def test_rerun_is_a_new_record_and_failure_message_is_kept(make_history: HistoryFactory, db_url: str) -> None:
    history = make_history()
    task = make_task("Ingest_x", params={"n": "1"})
    run_once(history, task, host="box-1", failure="Traceback: disk full")
    run_once(history, task, host="box-2")
    assert history.flush(timeout=30)

    rows = read_tables(db_url)
    assert [r[1:] for r in rows["tasks"]] == [
        ("Ingest_x", "Ingest", "box-1"),
        ("Ingest_x", "Ingest", "box-2"),
    ]
    first, second = (r[0] for r in rows["tasks"])
    events = [(r[1], r[2]) for r in rows["task_events"]]
    assert events == [
        (first, "PENDING"),
        (first, "RUNNING"),
        (first, "FAILED"),
        (second, "PENDING"),
        (second, "RUNNING"),
        (second, "DONE"),
    ]
    failed_event_id = rows["task_events"][2][0]
    assert rows["task_event_messages"] == [(failed_event_id, "Traceback: disk full")]
    # both runs keep their own parameters
    assert rows["task_parameters"] == [(first, "n", "1"), (second, "n", "1")]


def test_repeated_scheduling_stays_in_one_run_and_late_done_settles_it(
    make_history: HistoryFactory, db_url: str
) -> None:
    history = make_history()
    task = make_task("Report_1")
    history.task_scheduled(task)  # two workers add the same pending task
    history.task_scheduled(task)
    history.task_started(task, "box-1")
    task.expl = "boom"
    history.task_finished(task, False)
    history.task_finished(task, True)  # mark_as_done after the failure
    assert history.flush(timeout=30)

    rows = read_tables(db_url)
    assert len(rows["tasks"]) == 1
    assert [r[2] for r in rows["task_events"]] == ["PENDING", "PENDING", "RUNNING", "FAILED", "DONE"]


def test_long_failure_message_is_bounded(make_history: HistoryFactory, db_url: str) -> None:
    history = make_history()
    task = make_task("Big_1")
    run_once(history, task, failure="x" * (MAX_MESSAGE_CHARS * 3))
    assert history.flush(timeout=30)
    ((_, message),) = read_tables(db_url)["task_event_messages"]
    assert message.startswith("x" * 100)
    assert MAX_MESSAGE_CHARS <= len(message) < MAX_MESSAGE_CHARS + 100


def test_over_long_values_are_cut_to_luigis_column_widths(make_history: HistoryFactory, db_url: str) -> None:
    history = make_history()
    task = make_task("T" * 300, family="F" * 300, params={"p" * 200: "v" * 5000})
    run_once(history, task, host="h" * 300)
    assert history.flush(timeout=30)
    rows = read_tables(db_url)
    ((_, task_id, name, host),) = rows["tasks"]
    assert (len(task_id), len(name), len(host)) == (200, 128, 128)
    ((_, param_name, value),) = rows["task_parameters"]
    assert (len(param_name), value) == (128, "v" * 5000)


def test_events_from_luigids_scheduler(make_history: HistoryFactory, db_url: str) -> None:
    """The real scheduler reports add_task / get_work transitions into the recorder."""
    history = make_history()
    scheduler = Scheduler(SchedulerConfig(record_task_history=True), task_history_impl=history)
    assert scheduler.has_task_history() is True
    params = {"day": "2024-05-01"}
    scheduler.add_task(worker="w1", task_id="Load_1", family="Load", params=params, status="PENDING")
    assert scheduler.get_work(worker="w1", host="box-9")["task_id"] == "Load_1"
    scheduler.add_task(
        worker="w1", task_id="Load_1", family="Load", params=params, status="FAILED", expl="bad row"
    )
    scheduler.add_task(worker="w1", task_id="Load_1", family="Load", params=params, status="PENDING")
    assert scheduler.get_work(worker="w1", host="box-9")["task_id"] == "Load_1"
    scheduler.add_task(worker="w1", task_id="Load_1", family="Load", params=params, status="DONE")
    assert history.flush(timeout=30)

    rows = read_tables(db_url)
    assert [r[1:] for r in rows["tasks"]] == [("Load_1", "Load", "box-9"), ("Load_1", "Load", "box-9")]
    first, second = (r[0] for r in rows["tasks"])
    assert [(r[1], r[2]) for r in rows["task_events"]] == [
        (first, "PENDING"),
        (first, "RUNNING"),
        (first, "FAILED"),
        (second, "PENDING"),
        (second, "RUNNING"),
        (second, "DONE"),
    ]
    assert [m for _, m in rows["task_event_messages"]] == ["bad row"]


def test_forgotten_run_starts_a_new_record(make_history: HistoryFactory, db_url: str) -> None:
    """The per-task run map is bounded; a forgotten task id just opens a new row at its next event."""
    history = make_history(max_tracked_runs=2)
    tasks = [make_task(f"T_{i}") for i in range(5)]
    for task in tasks:
        history.task_scheduled(task)
    assert history.flush(timeout=30)
    assert history.metrics()["tracked_runs"] == 2
    history.task_started(tasks[0], "box")  # T_0 was forgotten
    history.task_started(tasks[4], "box")  # T_4 is still tracked
    assert history.flush(timeout=30)
    rows = read_tables(db_url)
    assert [r[1] for r in rows["tasks"]] == ["T_0", "T_1", "T_2", "T_3", "T_4", "T_0"]
    t4 = rows["tasks"][4][0]
    assert [r[2] for r in rows["task_events"] if r[1] == t4] == ["PENDING", "RUNNING"]


def test_stop_flushes_and_later_events_are_counted_as_dropped(db_url: str) -> None:
    from luigid.history.config import HistoryConfig
    from luigid.history.engine import open_engine

    config = HistoryConfig(db_connection=db_url, flush_interval=30)  # only stop() will flush
    history = DbTaskHistory(config, open_engine(db_url))
    history.start()
    for i in range(10):
        history.task_scheduled(make_task(f"S_{i}"))
    assert history.stop(timeout=30) is True
    assert len(read_tables(db_url)["task_events"]) == 10
    history.task_scheduled(make_task("late"))
    assert history.dropped == 1
