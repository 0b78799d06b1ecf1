"""stable_done_cooldown_secs, and pausing the scheduler."""

from __future__ import annotations

from collections.abc import Callable

from luigid.scheduler import Scheduler

from .support import Clock, add, status_of, work_id

Make = Callable[..., Scheduler]


def test_pending_claim_right_after_done_is_ignored(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(stable_done_cooldown_secs=10)
    add(s, "A_1", worker="w1")
    assert work_id(s, "w1") == "A_1"
    add(s, "A_1", worker="w1", status="DONE", runnable=None)
    clock.advance(9)
    # another worker checked completeness just before A_1 finished
    add(s, "A_1", worker="w2", status="PENDING")
    assert status_of(s, "A_1") == "DONE"
    assert work_id(s, "w2") is None
    clock.advance(2)
    add(s, "A_1", worker="w2", status="PENDING")
    assert status_of(s, "A_1") == "PENDING"
    assert work_id(s, "w2") == "A_1"


def test_zero_cooldown_accepts_pending_at_once(make_scheduler: Make) -> None:
    s = make_scheduler(stable_done_cooldown_secs=0)
    add(s, "A_1", status="DONE")
    add(s, "A_1", status="PENDING")
    assert status_of(s, "A_1") == "PENDING"


def test_cooldown_only_guards_against_pending(make_scheduler: Make) -> None:
    s = make_scheduler(stable_done_cooldown_secs=10)
    add(s, "A_1", status="DONE")
    add(s, "A_1", status="FAILED")
    assert status_of(s, "A_1") == "FAILED"


def test_pause_stops_handing_out_work(make_scheduler: Make) -> None:
    s = make_scheduler()
    assert s.is_pause_enabled() == {"enabled": True}
    assert s.is_paused() == {"paused": False}
    add(s, "A_1")
    s.pause()
    assert s.is_paused() == {"paused": True}
    reply = s.get_work(worker="w1", host="h")
    assert reply["task_id"] is None
    assert reply["n_pending_tasks"] == 1  # the counts are still reported
    s.unpause()
    assert s.is_paused() == {"paused": False}
    assert work_id(s) == "A_1"


def test_pause_disabled_by_config(make_scheduler: Make) -> None:
    s = make_scheduler(pause_enabled=False)
    assert s.is_pause_enabled() == {"enabled": False}
    add(s, "A_1")
    s.pause()
    assert s.is_paused() == {"paused": False}
    assert work_id(s) == "A_1"
