"""What every suite shares: a real luigid process, bounded polling, a fake clock, the
scheduler's invariants, a scheduler's portrait, and the headless browser."""

from tests.support.clock import START, FakeClock
from tests.support.daemon import Luigid, free_port, luigid_command, stop_all
from tests.support.invariants import check_invariants
from tests.support.wait import wait_for

__all__ = [
    "START",
    "FakeClock",
    "Luigid",
    "check_invariants",
    "free_port",
    "luigid_command",
    "stop_all",
    "wait_for",
]
