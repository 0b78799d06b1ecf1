"""The change log: its file format, a torn end and a damaged middle, fsync policies (with an
instrumented fsync, never timing), replay through a real scheduler, and loading what an
older luigid left (status journals)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import shutil
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from tornado.testing import AsyncHTTPTestCase

from luigid.config import ConfigError, SchedulerConfig, scheduler_config_from
from luigid.core.rpc import RPC_METHODS, collect
from luigid.runtime.server import app
from luigid.scheduler import Scheduler
from luigid.storage.changelog import LocalChangeLog
from luigid.storage.changelog_format import HEADER, encode_record, read_records
from luigid.storage.journal import Journal
from luigid.web import api as api_module
from tests.support import FakeClock, wait_for
from tests.support.portrait import portrait as saved_fields


class Fsyncs:
    """An instrumented fsync: remembers each call (in ``events``, shared with replies)."""

    def __init__(self, events: list[str] | None = None) -> None:
        self.events = events if events is not None else []
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.events.append("fsync")


def scheduler_at(path: Path, policy: str = "no", fsync: Fsyncs | None = None, **config: Any) -> Scheduler:
    scheduler = Scheduler(SchedulerConfig(state_path=str(path), **config))
    scheduler.attach_change_store(LocalChangeLog(str(path), policy, fsync=fsync or Fsyncs()))
    scheduler.load()
    return scheduler


def call(scheduler: Scheduler, method: str, **arguments: Any) -> Any:
    """As the HTTP layer makes the call (so it is recorded)."""
    return collect(RPC_METHODS[method].invoke(scheduler, arguments))


def portrait(scheduler: Scheduler) -> str:
    """What its RPCs show, and every saved field (tests.support.portrait), comparable."""
    return json.dumps(
        [
            call(scheduler, "task_list", status=""),
            call(scheduler, "worker_list"),
            call(scheduler, "resource_list"),
            call(scheduler, "is_paused"),
            saved_fields(scheduler),
        ],
        sort_keys=True,
        default=str,
    )


def busy(scheduler: Scheduler) -> None:
    call(scheduler, "add_worker", worker="w1", info={"workers": 2})
    for n in range(4):
        deps = [f"T{n - 1}"] if n else []
        call(scheduler, "add_task", worker="w1", task_id=f"T{n}", family="T", deps=deps, priority=n)
    assert call(scheduler, "get_work", worker="w1", host="h")["task_id"] == "T0"
    call(scheduler, "add_task", worker="w1", task_id="T0", status="FAILED", expl="boom")
    call(scheduler, "pause")
    call(scheduler, "update_resource", resource="r", amount=3)


def log_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".changelog.*"))


# ------------------------------------------------------------------------ format


def test_records_are_framed_with_length_and_checksum_after_a_versioned_header(tmp_path: Path) -> None:
    data = (
        HEADER + encode_record(0, "pause", b"{}", 12.5, []) + encode_record(1, "x", b'{"a":1}', 13.0, ["i"])
    )
    contents = read_records(data)
    assert (contents.torn, contents.damage) == (False, None)
    assert [(r.seq, r.method, r.arguments, r.now, r.ids) for r in contents.records] == [
        (0, "pause", {}, 12.5, []),
        (1, "x", {"a": 1}, 13.0, ["i"]),
    ]


def test_a_newer_format_version_is_refused() -> None:
    from luigid.storage.changelog_format import MAGIC, NewerFormat

    with pytest.raises(NewerFormat):
        read_records(MAGIC + b"\x00\x09")


def test_replay_after_kill_equals_the_live_state(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    busy(live)
    expected = portrait(live)
    # no dump: the process dies here
    again = scheduler_at(path)
    assert portrait(again) == expected
    assert call(again, "fetch_error", task_id="T0") == call(live, "fetch_error", task_id="T0")


def test_a_second_crash_before_the_next_snapshot_replays_the_same(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    busy(live)
    expected = portrait(live)
    first = scheduler_at(path)
    assert portrait(first) == expected
    assert portrait(scheduler_at(path)) == expected


def test_a_snapshot_covers_the_log_and_deletes_it(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    busy(live)
    live.dump()
    assert log_files(path) == []
    call(live, "unpause")
    expected = portrait(live)
    assert portrait(scheduler_at(path)) == expected


def test_replay_sends_no_mail_history_or_metrics(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    busy(scheduler_at(path))
    told: list[str] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: told.append(name)

    again = Scheduler(SchedulerConfig(state_path=str(path)), task_history_impl=Spy(), metrics_collector=Spy())
    again.attach_change_store(LocalChangeLog(str(path), "no"))
    again.load()
    assert told == []
    assert call(again, "is_paused") == {"paused": True}


def test_message_ids_are_replayed_as_made(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    call(live, "add_worker", worker="w1", info={})
    made = call(live, "send_scheduler_message", worker="w1", task="T", content="hello")["message_id"]
    again = scheduler_at(path)
    assert made is not None and made in json.dumps(call(again, "ping", worker="w1")["rpc_messages"])


def test_a_prune_round_over_several_slices_replays_as_it_ran(tmp_path: Path, monkeypatch: Any) -> None:
    """Many tasks expire in one round, the budget takes a few per slice, and other calls run
    between slices; the queue also holds stale timers (tasks re-added since they were marked)
    when the snapshot is taken. A crash mid-round, and again after it: the replay equals."""
    clock = FakeClock().install(monkeypatch)
    crashes = iter(range(1, 10))

    def open_scheduler(folder: Path) -> Scheduler:
        path = str(folder / "state.pickle")
        scheduler = Scheduler(
            SchedulerConfig(state_path=path, remove_delay=100.0, worker_disconnect_delay=10.0)
        )
        scheduler.pruner.step, scheduler.pruner.slice_tasks = 3, 7
        scheduler.attach_change_store(LocalChangeLog(path, "no", fsync=Fsyncs()))
        scheduler.load()
        return scheduler

    def whole_round(scheduler: Scheduler) -> None:
        while scheduler.prune_slice():
            pass

    def assert_replay_equals(live: Scheduler) -> None:
        # what kill -9 leaves, restarted in a folder of its own (its reads' prune slices are
        # recorded too, and must not land in the live daemon's log)
        image = shutil.copytree(tmp_path / "live", tmp_path / f"crash-{next(crashes)}")
        again = open_scheduler(image)
        assert portrait(again) == portrait(live)
        for status in ("PENDING", "RUNNING", "DONE", "FAILED", "DISABLED", "UNKNOWN"):
            assert call(again, "task_list", status=status) == call(live, "task_list", status=status)
        assert call(again, "worker_list") == call(live, "worker_list")
        assert sorted(again.state.queue.timers) == sorted(live.state.queue.timers)

    (tmp_path / "live").mkdir()
    live = open_scheduler(tmp_path / "live")
    for n in range(60):
        call(live, "add_task", worker="w1", task_id=f"T{n:02}", family="T")
    clock.advance(11)
    whole_round(live)  # w1 is gone: every task is marked for removal at one time
    for n in range(0, 60, 2):  # asked for again: their removal timers go stale
        call(live, "add_task", worker="w2", task_id=f"T{n:02}", family="T")
    call(live, "add_worker", worker="w3", info={})
    live.dump()  # the snapshot: the live queue still holds the stale timers
    clock.advance(101)
    call(live, "ping", worker="w2")
    call(live, "ping", worker="w3")
    assert live.prune_slice()  # the round's first slice...
    call(live, "add_task", worker="w3", task_id="T05", family="T", priority=3)  # ...calls between...
    call(live, "add_task", worker="w3", task_id="T41", family="T", priority=4)
    assert live.prune_slice()  # ...and another slice: the daemon dies here
    assert_replay_equals(live)
    whole_round(live)
    assert_replay_equals(live)


# --------------------------------------------------------------- torn and damaged


def test_a_torn_last_record_is_dropped_with_one_warning(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    busy(live)
    expected = portrait(live)  # the last records written are the portrait's prune slices
    (log,) = log_files(path)
    data = log.read_bytes()
    torn = encode_record(99, "add_task", b'{"worker":"w1","task_id":"LOST"}', 1.0, [])
    log.write_bytes(data + torn[:-5])
    with caplog.at_level(logging.WARNING, logger="luigi.server"):
        again = scheduler_at(path)
    warnings = [r for r in caplog.records if "cut short" in r.getMessage()]
    assert len(warnings) == 1
    assert portrait(again) == expected
    assert log.exists()  # nothing damaged: the file stays until a snapshot covers it


def test_a_damaged_middle_record_stops_the_replay_and_moves_the_file_aside(
    tmp_path: Path, caplog: Any, allow_error_logs: None
) -> None:
    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    call(live, "add_task", worker="w1", task_id="A", family="A")
    call(live, "add_task", worker="w1", task_id="B", family="B")
    call(live, "add_task", worker="w1", task_id="C", family="C")
    (log,) = log_files(path)
    data = bytearray(log.read_bytes())
    second = data.find(b'"task_id":"B"')
    data[second + 11] ^= 0xFF  # inside B's record: its checksum no longer matches
    log.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="luigi.server"):
        again = scheduler_at(path)  # no crash
    errors = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert sorted(call(again, "task_list", status="")) == ["A"]
    assert not log.exists()
    assert len(list(tmp_path.glob("state.pickle.changelog.0.corrupt-*"))) == 1
    # and the next start does not trip over it again
    assert sorted(call(scheduler_at(path), "task_list", status="")) == ["A"]


def test_a_file_cut_inside_its_header_is_torn_not_damaged(tmp_path: Path) -> None:
    assert read_records(HEADER[:3]).torn
    assert read_records(b"garbage!!!!").damage is not None


# ------------------------------------------------------------------------ fsync


def test_always_groups_one_loop_turns_records_into_one_fsync(tmp_path: Path) -> None:
    fsyncs = Fsyncs()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "always", fsync=fsyncs)

    async def sixteen_workers() -> None:
        waits = []
        for n in range(16):
            log.append("ping", json.dumps({"worker": f"w{n}"}).encode(), 1.0, [])
            synced = log.durable()
            assert synced is not None
            waits.append(synced)
        assert fsyncs.calls == 0  # no reply yet, and no fsync: it comes once, for all
        await asyncio.gather(*waits)

    asyncio.run(sixteen_workers())
    assert fsyncs.calls == 1
    log.close()


def test_everysec_and_no_never_make_a_reply_wait(tmp_path: Path) -> None:
    for policy in ("everysec", "no"):
        fsyncs = Fsyncs()
        log = LocalChangeLog(str(tmp_path / f"{policy}.pickle"), policy, fsync=fsyncs)
        log.append("ping", b"{}", 1.0, [])
        assert log.durable() is None
        log.close()
        assert fsyncs.calls == (1 if policy == "everysec" else 0)  # everysec syncs on close too


def test_everysec_syncs_in_the_background(tmp_path: Path) -> None:
    fsyncs = Fsyncs()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "everysec", fsync=fsyncs)
    log.append("ping", b"{}", 1.0, [])
    wait_for(lambda: fsyncs.calls >= 1, timeout=10, what="the background fsync")
    log.close()


class ThreadFsyncs(Fsyncs):
    """Remembers which thread made each fsync; ``hold`` keeps one waiting until released."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.hold = threading.Event()
        self.holding = threading.Event()
        self.hold.set()

    def __call__(self, fd: int) -> None:
        self.threads.append(threading.current_thread().name)
        self.holding.set()
        self.hold.wait(10)
        super().__call__(fd)


def open_paths() -> set[str]:
    return {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}


def test_an_everysec_rotation_leaves_the_fsync_to_the_background_thread(tmp_path: Path) -> None:
    fsyncs = ThreadFsyncs()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "everysec", fsync=fsyncs)
    log.append("ping", b"{}", 1.0, [])
    first = log.path(log.gen)
    assert log.rotate() == 0
    assert fsyncs.threads == []  # the snapshot's fork comes next, on the event loop
    wait_for(lambda: fsyncs.threads == ["changelog-fsync"], timeout=10, what="the handed file's fsync")
    wait_for(lambda: first not in open_paths(), timeout=10, what="the handed file closed")
    log.close()


def test_a_rotation_does_not_wait_behind_a_background_fsync(tmp_path: Path) -> None:
    fsyncs = ThreadFsyncs()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "everysec", fsync=fsyncs)
    log.append("ping", b"{}", 1.0, [])
    fsyncs.hold.clear()
    syncing = threading.Thread(target=log.sync)  # as the background thread does once a second
    syncing.start()
    assert fsyncs.holding.wait(10)
    rotating = threading.Thread(target=log.rotate)
    rotating.start()
    rotating.join(5)
    assert not rotating.is_alive()  # done while that fsync still waits on the disk
    assert syncing.is_alive()
    fsyncs.hold.set()
    syncing.join(10)
    log.close()


def test_with_no_descriptor_to_spare_the_sync_still_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = Fsyncs()
    log = LocalChangeLog(str(tmp_path / "state.pickle"), "everysec", fsync=fsyncs)
    log.append("ping", b"{}", 1.0, [])

    def no_descriptors(fd: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "dup", no_descriptors)
    log.sync()
    assert fsyncs.calls == 1 and not log.refusing
    monkeypatch.undo()
    log.close()


def test_journal_fsync_is_a_scheduler_setting() -> None:
    assert SchedulerConfig().journal_fsync == "everysec"
    assert scheduler_config_from({"scheduler": {"journal_fsync": "always"}}).journal_fsync == "always"
    with pytest.raises(ConfigError, match="journal_fsync"):
        scheduler_config_from({"scheduler": {"journal_fsync": "sometimes"}})


class TestAlwaysSyncsBeforeReplying(AsyncHTTPTestCase):
    """Through the real HTTP handler: the fsync covering a call's record comes before its reply."""

    def get_app(self) -> Any:
        import tempfile

        self.folder = tempfile.mkdtemp()
        self.events: list[str] = []
        self.fsyncs = Fsyncs(self.events)
        path = str(Path(self.folder) / "state.pickle")
        self.scheduler = Scheduler(SchedulerConfig(state_path=path))
        self.scheduler.attach_change_store(LocalChangeLog(path, "always", fsync=self.fsyncs))
        return app(self.scheduler)

    def test_reply_waits_for_the_fsync(self) -> None:
        events = self.events
        original = api_module.RpcHandler.finish

        def finish(handler: Any, chunk: Any = None) -> Any:
            events.append("reply")
            return original(handler, chunk)

        body = urllib.parse.urlencode({"data": json.dumps({"worker": "w1", "task_id": "A", "family": "A"})})
        api_module.RpcHandler.finish = finish  # type: ignore[method-assign,assignment]
        try:
            response = self.fetch("/api/add_task", method="POST", body=body)
        finally:
            api_module.RpcHandler.finish = original  # type: ignore[method-assign]
        assert response.code == 200
        assert events == ["fsync", "reply"]
        self.scheduler.close()


# ---------------------------------------------------------------------- migration


def test_an_older_luigids_state_file_and_status_journal_still_load(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    old = Scheduler(SchedulerConfig(state_path=str(path)))
    old.journal = Journal(str(path))
    old.add_task(worker="w1", task_id="A_1", family="A")
    old.dump()  # generation 0 in the file
    old.add_task(worker="w1", task_id="A_1", status="DONE")  # journaled in generation 1
    assert (tmp_path / "state.pickle.journal.1").exists()

    again = scheduler_at(path)
    assert call(again, "task_list", status="DONE").keys() == {"A_1"}
    again.dump()  # the snapshot now covers the old journal: gone
    assert list(tmp_path.glob("state.pickle.journal.*")) == []
    assert call(scheduler_at(path), "task_list", status="DONE").keys() == {"A_1"}


def test_the_luigi_export_replays_the_change_log_without_touching_it(tmp_path: Path) -> None:
    from luigid.storage.luigi_export import read_state

    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    call(live, "add_task", worker="w1", task_id="A", family="A")
    live.dump()
    call(live, "add_task", worker="w1", task_id="B", family="B", status="DONE")
    before = sorted(p.name for p in tmp_path.iterdir())
    state = read_state(str(path), SchedulerConfig(state_path=str(path)))
    assert {t.id: t.status for t in state.tasks()} == {"A": "PENDING", "B": "DONE"}
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_snapshot_keeps_the_hand_out_order_its_log_replays_on(tmp_path: Path, monkeypatch: Any) -> None:
    """Ties in get_work's order are broken by when a task entered its status, not by when it
    was first added: a loaded snapshot must keep that, or replaying a get_work recorded after
    it hands out another task than the live call did (an HA standby then believes the wrong
    task is running, and hands the right one out a second time after a takeover)."""
    FakeClock().install(monkeypatch)  # one time for every task: only the status order differs
    path = tmp_path / "state.pickle"
    live = scheduler_at(path)
    for task_id in ("A", "B"):
        call(live, "add_task", worker="w1", task_id=task_id, family="T")
    call(live, "add_task", worker="w1", task_id="A", status="FAILED")
    call(live, "add_task", worker="w1", task_id="A", status="PENDING")  # A now entered PENDING after B
    live.dump()
    handed = call(live, "get_work", worker="w1", host="h")["task_id"]
    again = scheduler_at(path)  # the snapshot, then the get_work replayed on it
    assert {t: v["status"] for t, v in call(again, "task_list", status="").items()} == {
        "A": "PENDING" if handed == "B" else "RUNNING",
        "B": "RUNNING" if handed == "B" else "PENDING",
    }
    assert portrait(again) == portrait(live)
