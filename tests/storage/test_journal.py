"""The status journal: files and generations, torn lines, and DONE reports made after the
last snapshot coming back when the daemon restarts from that snapshot."""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from pathlib import Path

import pytest

from luigid.config import SchedulerConfig
from luigid.core.model import Task
from luigid.scheduler import Scheduler
from luigid.storage import safe_pickle
from luigid.storage import snapshots as snapshots_module
from luigid.storage.journal import Journal
from luigid.storage.snapshots import Snapshotter

# ------------------------------------------------------------------------ the files


def test_records_are_json_lines_in_the_current_generation(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "state.pickle"))
    journal.record("A_1", "RUNNING", 10.5)
    journal.record("A_1", "DONE", 11.0, None)
    lines = (tmp_path / "state.pickle.journal.0").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [["A_1", "RUNNING", 10.5], ["A_1", "DONE", 11.0]]
    assert oct(os.stat(tmp_path / "state.pickle.journal.0").st_mode & 0o777) == "0o600"
    assert journal.entries_after(-1) == [("A_1", "RUNNING", 10.5, None), ("A_1", "DONE", 11.0, None)]


def test_rotate_splits_generations_and_discard_deletes_covered_ones(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "state.pickle"))
    journal.record("A_1", "DONE", 1.0, None)
    assert journal.rotate() == 0
    journal.record("B_1", "DONE", 2.0, None)
    assert journal.rotate() == 1
    journal.record("C_1", "DONE", 3.0, None)
    assert journal.generations() == [0, 1, 2]
    assert journal.entries_after(0) == [("B_1", "DONE", 2.0, None), ("C_1", "DONE", 3.0, None)]
    journal.discard_through(1)
    assert journal.generations() == [2]
    assert journal.entries_after(-1) == [("C_1", "DONE", 3.0, None)]


def test_a_new_journal_continues_after_the_files_on_disk(tmp_path: Path) -> None:
    path = str(tmp_path / "state.pickle")
    first = Journal(path)
    first.record("A_1", "DONE", 1.0, None)
    first.rotate()
    first.record("B_1", "DONE", 2.0, None)
    again = Journal(path)
    assert again.gen == 2
    again.record("C_1", "DONE", 3.0, None)
    assert again.generations() == [0, 1, 2]
    # a snapshot saying it covered generation 7 moves new records past it
    again.start_after(7)
    again.record("D_1", "DONE", 4.0, None)
    assert again.entries_after(7) == [("D_1", "DONE", 4.0, None)]


def test_torn_last_line_is_ignored_and_a_bad_middle_line_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.pickle"
    (tmp_path / "state.pickle.journal.3").write_bytes(
        b'["A_1","DONE",1.0]\nnot json\n["B_1","DONE",2.0]\n["C_1","DO'
    )
    with caplog.at_level(logging.WARNING, logger="luigi.server"):
        entries = Journal(str(path)).entries_after(-1)
    assert entries == [("A_1", "DONE", 1.0, None), ("B_1", "DONE", 2.0, None)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "line 2" in warnings[0]


def test_write_failure_warns_once_and_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "gone"
    journal = Journal(str(folder / "state.pickle"))  # its folder does not exist: every write fails
    with caplog.at_level(logging.WARNING, logger="luigi.server"):
        for n in range(5):
            journal.record(f"T_{n}", "DONE", float(n))
    warnings = [r.getMessage() for r in caplog.records if "status journal" in r.getMessage()]
    assert len(warnings) == 1


# ------------------------------------------------------------- through the scheduler


def task_of(scheduler: Scheduler, task_id: str) -> Task:
    task = scheduler.state.get_task(task_id)
    assert task is not None, task_id
    return task


def journaled_scheduler(path: Path, **config: object) -> Scheduler:
    scheduler = Scheduler(SchedulerConfig(state_path=str(path), **config))  # type: ignore[arg-type]
    scheduler.journal = Journal(str(path))
    return scheduler


def restart(path: Path, **config: object) -> Scheduler:
    """What the daemon does after kill -9: a new process loads the file and the journal."""
    scheduler = journaled_scheduler(path, **config)
    scheduler.load()
    return scheduler


def running_dag(path: Path) -> Scheduler:
    scheduler = journaled_scheduler(path)
    for task_id in ("A_1", "B_1", "C_1"):
        scheduler.add_task(worker="w1", task_id=task_id, family=task_id[0])
    assert scheduler.get_work(worker="w1", host="h")["task_id"] in ("A_1", "B_1", "C_1")
    return scheduler


def test_scheduler_without_a_journal_writes_no_journal_files(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    scheduler = Scheduler(SchedulerConfig(state_path=str(path)))
    scheduler.add_task(worker="w1", task_id="A_1", family="A", status="DONE")
    scheduler.dump()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pickle"]


def test_done_after_the_snapshot_survives_a_reload_without_final_save(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = running_dag(path)
    snapshots = Snapshotter(live.state, str(path), 1.0, fork=False, journal=live.journal)
    snapshots.take()  # every task still PENDING or RUNNING in the file
    for task_id in ("A_1", "B_1", "C_1"):
        live.add_task(worker="w1", task_id=task_id, status="DONE")
    done_at = task_of(live, "A_1").updated
    # no dump: the process dies here

    again = restart(path)
    assert {t: task_of(again, t).status for t in ("A_1", "B_1", "C_1")} == dict.fromkeys(
        ("A_1", "B_1", "C_1"), "DONE"
    )
    assert task_of(again, "A_1").updated == done_at
    assert again.get_work(worker="w1", host="h", current_tasks=[])["task_id"] is None
    # the recent DONE time keeps a worker's stale PENDING re-add from taking effect
    again.add_task(worker="w2", task_id="A_1", status="PENDING")
    assert task_of(again, "A_1").status == "DONE"


def test_a_second_crash_before_the_next_snapshot_loses_nothing(tmp_path: Path) -> None:
    """The replay itself is not journaled again: a second kill -9 right after a restart
    restores the same statuses, times and workers as the first."""
    path = tmp_path / "state.pickle"
    live = journaled_scheduler(path)
    live.add_task(worker="w1", task_id="A_1", family="A")
    live.add_task(worker="w1", task_id="B_1", family="B")
    live.dump()  # both PENDING in the file
    started = live.get_work(worker="w1", host="h")["task_id"]
    other = "B_1" if started == "A_1" else "A_1"
    live.add_task(worker="w1", task_id=other, status="DONE")

    def portrait(scheduler: Scheduler) -> dict[str, tuple[object, ...]]:
        tasks = [task_of(scheduler, t) for t in ("A_1", "B_1")]
        return {t.id: (t.status, t.updated, t.worker_running) for t in tasks}

    expected = portrait(live)
    assert live.journal is not None
    journaled = live.journal.entries_after(-1)
    first = restart(path)  # no dump: the first process died
    assert portrait(first) == expected
    assert first.journal is not None
    assert first.journal.entries_after(-1) == journaled  # the replay wrote nothing
    second = restart(path)  # and the restarted one died before its first snapshot
    assert portrait(second) == expected


def test_only_the_last_journaled_status_counts(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = journaled_scheduler(path, stable_done_cooldown_secs=0)
    live.add_task(worker="w1", task_id="A_1", family="A")
    live.dump()
    live.add_task(worker="w1", task_id="A_1", status="DONE")
    live.add_task(worker="w1", task_id="A_1", status="PENDING")  # its output was removed: run again
    assert task_of(restart(path), "A_1").status == "PENDING"


def take_and_wait(snapshots: Snapshotter) -> None:
    """Take a forked snapshot and reap it, as the server's ticks do; it must have been saved."""
    snapshots.take()
    deadline = time.monotonic() + 30
    while snapshots._child is not None and time.monotonic() < deadline:
        snapshots.tick()
        time.sleep(0.01)
    assert snapshots.last_error == ""


def test_snapshot_stores_its_generation_and_drops_covered_journals(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = running_dag(path)
    snapshots = Snapshotter(live.state, str(path), 1.0, fork=True, journal=live.journal)
    take_and_wait(snapshots)
    document = safe_pickle.loads(path.read_bytes())
    assert document["journal_generation"] == 0
    assert live.journal is not None and live.journal.generations() == []  # generation 0 is covered
    live.add_task(worker="w1", task_id="A_1", status="DONE")
    assert live.journal.generations() == [1]
    assert task_of(restart(path), "A_1").status == "DONE"


def test_no_collection_runs_while_a_snapshot_forks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the fork is the longest pause of the loop at 1M tasks: nothing may add to it
    path = tmp_path / "state.pickle"
    live = running_dag(path)
    snapshots = Snapshotter(live.state, str(path), 1.0, fork=True, journal=live.journal)
    started: list[int] = []
    during: list[int] = []  # collections started by the allocations right before the fork

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    def allocating_fork() -> int:
        before = len(started)
        _ = [[n] for n in range(100)]  # allocations that would start a collection
        during.append(len(started) - before)
        return real_fork()

    real_fork = os.fork
    monkeypatch.setattr(snapshots_module.os, "fork", allocating_fork)
    was, threshold = gc.isenabled(), gc.get_threshold()
    gc.enable()
    gc.set_threshold(1)
    gc.callbacks.append(watch)
    try:
        snapshots.take()
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*threshold)
        (gc.enable if was else gc.disable)()
    monkeypatch.undo()
    assert during == [0]
    snapshots.stop()


def test_the_snapshot_child_runs_at_a_lower_priority_than_the_server(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = running_dag(path)
    seen = tmp_path / "niceness"

    def sink(state: object, generation: int | None, check: object) -> None:  # runs in the child
        seen.write_text(str(os.nice(0)))

    snapshots = Snapshotter(live.state, str(path), 1.0, fork=True, journal=live.journal, sink=sink)
    take_and_wait(snapshots)
    assert int(seen.read_text()) == min(19, os.nice(0) + snapshots_module.CHILD_NICENESS)


def test_final_save_covers_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = running_dag(path)
    live.add_task(worker="w1", task_id="A_1", status="DONE")
    live.dump()
    assert live.journal is not None and live.journal.generations() == []
    again = restart(path)
    assert task_of(again, "A_1").status == "DONE"
    # the restarted journal writes past what the file covers
    again.add_task(worker="w1", task_id="B_1", status="DONE")
    document = safe_pickle.loads(path.read_bytes())
    assert again.journal is not None and again.journal.generations()[0] > document["journal_generation"]
    assert task_of(restart(path), "B_1").status == "DONE"


def test_file_without_a_generation_replays_nothing(tmp_path: Path) -> None:
    """A state file from before journals (or luigi's) says nothing about which journal
    lines are newer than it, so none are trusted."""
    path = tmp_path / "state.pickle"
    old = Scheduler(SchedulerConfig(state_path=str(path)))
    old.add_task(worker="w1", task_id="A_1", family="A")
    old.dump()
    Journal(str(path)).record("A_1", "DONE", time.time())
    assert task_of(restart(path), "A_1").status == "PENDING"


def test_task_started_after_the_snapshot_stays_with_its_worker(tmp_path: Path) -> None:
    """A worker handed a task just before the kill finishes it and reports DONE after the
    restart; meanwhile no other worker may be handed the same task."""
    path = tmp_path / "state.pickle"
    live = journaled_scheduler(path)
    live.add_task(worker="w1", task_id="A_1", family="A")
    live.add_task(worker="w2", task_id="A_1", family="A")
    live.dump()  # A_1 PENDING in the file
    assert live.get_work(worker="w1", host="h")["task_id"] == "A_1"
    started_at = task_of(live, "A_1").updated

    again = restart(path)
    task = task_of(again, "A_1")
    assert (task.status, task.worker_running, task.time_running) == ("RUNNING", "w1", started_at)
    assert again.get_work(worker="w2", host="h")["task_id"] is None
    again.add_task(worker="w1", task_id="A_1", status="DONE")
    assert task_of(again, "A_1").status == "DONE"


def test_journal_line_names_the_worker_only_for_running(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = running_dag(path)
    entries = Journal(str(path)).entries_after(-1)
    assert [(status, worker) for _, status, _, worker in entries] == [("RUNNING", "w1")]
    task_id = entries[0][0]
    live.add_task(worker="w1", task_id=task_id, status="DONE")
    assert Journal(str(path)).entries_after(-1)[-1][1:] == ("DONE", task_of(live, task_id).updated, None)
