"""Helpers every test that runs a real luigid process needs: a free loopback port, the
``luigid`` console script of this environment, and polling with a bound (not a timing
assertion: the limit only stops a broken run from hanging)."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def luigid_command() -> list[str]:
    """The console script next to this interpreter (``python -m luigid`` if there is none)."""
    script = Path(sys.executable).with_name("luigid")
    return [str(script)] if script.exists() else [sys.executable, "-m", "luigid"]


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.05
) -> Any:
    """Poll until ``predicate()`` is truthy and return its value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")
