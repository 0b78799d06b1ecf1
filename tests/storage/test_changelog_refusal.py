"""A change log that cannot be written or synced (issue 16): on a real, full tmpfs, and with
an instrumented fsync that fails. Nothing is acknowledged that is not in the log, nothing
written later overtakes a record that failed, and writes resume once space returns."""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path
from typing import Any

import pytest

from luigid.core.ports import WritesRefused
from luigid.storage import changelog as changelog_module
from luigid.storage.changelog import LocalChangeLog
from luigid.storage.changelog_format import read_records
from tests.support.tmpfs import fill, small_tmpfs

PAYLOAD = b'{"task_id": "' + b"x" * 5000 + b'"}'


@pytest.fixture(autouse=True)
def _retry_at_once(monkeypatch: Any) -> None:
    monkeypatch.setattr(changelog_module, "RETRY_SECONDS", 0.0)


def methods(log: LocalChangeLog) -> list[str]:
    return [record.method for record in log.records_after(None)]


def test_a_record_that_cannot_be_written_is_refused_kept_in_order_and_written_when_space_returns(
    tmp_path: Path, caplog: Any
) -> None:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        log = LocalChangeLog(str(disk / "state.pickle"), "no")
        log.append("first", PAYLOAD, 1.0, [])
        assert log.durable() is None and log.refusal() is None
        filler = fill(disk)
        with caplog.at_level(logging.WARNING, "luigi.server"):
            log.append("second", PAYLOAD, 2.0, [])
            with pytest.raises(WritesRefused, match="No space left on device"):
                log.durable()  # the call that made it is not acknowledged
            reason = log.refusal()  # and the next one is refused before it runs
        assert reason is not None and "could not write the change log" in reason
        assert log.refusing and log.refused == 2
        assert sum("could not write the change log" in r.getMessage() for r in caplog.records) == 1
        # a change made meanwhile (a prune slice) queues behind it, never ahead
        log.append("third", b"{}", 3.0, [])
        filler.unlink()
        assert log.refusal() is None
        log.append("fourth", b"{}", 4.0, [])
        log.close()
        assert methods(LocalChangeLog(str(disk / "state.pickle"))) == ["first", "second", "third", "fourth"]


def test_a_new_generation_that_cannot_even_get_its_header_is_retried_whole(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        log = LocalChangeLog(str(disk / "state.pickle"), "no")
        filler = fill(disk)
        log.append("first", b"{}", 1.0, [])
        assert log.refusing
        filler.unlink()
        assert log.recover()
        log.close()
        data = (disk / "state.pickle.changelog.0").read_bytes()
        assert [r.method for r in read_records(data).records] == ["first"]


def test_a_saved_snapshot_covers_what_was_pending_and_writes_resume(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        log = LocalChangeLog(str(disk / "state.pickle"), "no")
        log.append("first", b"{}", 1.0, [])
        filler = fill(disk)
        log.append("second", PAYLOAD, 2.0, [])
        assert log.refusing
        covered = log.rotate()  # a snapshot of memory (which holds "second") starts
        filler.unlink()
        log.discard_through(covered)  # and is saved
        assert not log.refusing and log.refusal() is None
        log.append("third", b"{}", 3.0, [])
        log.close()
        assert methods(LocalChangeLog(str(disk / "state.pickle"))) == ["third"]


class FailingFsync:
    def __init__(self) -> None:
        self.failing = True
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.failing:
            raise OSError(errno.EIO, "Input/output error")


def test_with_always_a_failed_fsync_fails_every_reply_of_its_turn_until_one_succeeds(
    tmp_path: Path, caplog: Any
) -> None:
    fsync = FailingFsync()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "always", fsync=fsync)

    async def turn() -> list[BaseException | None]:
        log.append("one", b"{}", 1.0, [])
        log.append("two", b"{}", 1.0, [])
        waiters = [log.durable(), log.durable()]
        outcomes: list[BaseException | None] = []
        for waiter in waiters:
            assert waiter is not None
            try:
                await waiter
                outcomes.append(None)
            except WritesRefused as exc:
                outcomes.append(exc)
        return outcomes

    with caplog.at_level(logging.WARNING, "luigi.server"):
        outcomes = asyncio.run(turn())
    assert all(isinstance(o, WritesRefused) and "Input/output error" in str(o) for o in outcomes)
    assert fsync.calls == 1  # one group commit for the turn
    assert log.refusal() is not None  # the retry fsyncs again, and fails again
    fsync.failing = False
    assert log.refusal() is None
    log.close()


def test_everysec_refuses_changes_after_its_background_fsync_failed(tmp_path: Path, caplog: Any) -> None:
    fsync = FailingFsync()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "everysec", fsync=fsync)
    log.append("one", b"{}", 1.0, [])
    with caplog.at_level(logging.WARNING, "luigi.server"):
        log.sync()  # what the background thread does once a second
    assert log.refusing
    with pytest.raises(WritesRefused):
        log.durable()
    fsync.failing = False
    assert log.recover()
    log.close()


def test_a_handed_file_that_fails_to_sync_after_its_snapshot_was_saved_refuses_nothing(
    tmp_path: Path, caplog: Any
) -> None:
    fsync = FailingFsync()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "everysec", fsync=fsync)
    log.append("one", b"{}", 1.0, [])
    covered = log.rotate()  # the file goes to the background thread, unsynced
    log.discard_through(covered)  # the snapshot was saved first, and its file deleted
    with caplog.at_level(logging.WARNING, "luigi.server"):
        log.sync()  # then the thread's fsync of that file fails
    assert log.refusing
    assert log.recover()  # nothing to sync any more: the snapshot holds those changes
    log.close()


def test_a_damaged_log_on_a_full_disk_still_starts(
    tmp_path: Path, caplog: Any, allow_error_logs: None
) -> None:
    """Replay stops at the damage and the replayed state is saved at once; when the disk has
    no room for that save, the start goes on with it in memory (never a crash loop)."""
    from luigid.config import SchedulerConfig
    from luigid.core.rpc import RPC_METHODS, collect
    from luigid.scheduler import Scheduler

    def scheduler_at(path: Path) -> Scheduler:
        scheduler = Scheduler(SchedulerConfig(state_path=str(path)))
        scheduler.attach_change_store(LocalChangeLog(str(path), "no"))
        scheduler.load()
        return scheduler

    def call(scheduler: Scheduler, method: str, **arguments: Any) -> Any:
        return collect(RPC_METHODS[method].invoke(scheduler, arguments))

    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        path = disk / "state.pickle"
        live = scheduler_at(path)
        for name in "ABC":
            call(live, "add_task", worker="w1", task_id=name, family=name)
        log = disk / "state.pickle.changelog.0"
        data = bytearray(log.read_bytes())
        data[data.find(b'"task_id":"B"') + 11] ^= 0xFF
        log.write_bytes(bytes(data))
        fill(disk)
        with caplog.at_level(logging.WARNING, "luigi.server"):
            again = scheduler_at(path)
        assert sorted(call(again, "task_list", status="")) == ["A"]
        assert any("Could not save the replayed state" in r.getMessage() for r in caplog.records)
