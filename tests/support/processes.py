"""Helpers every test that runs a real luigid process needs: a free loopback port, the
``luigid`` console script of this environment, polling with a bound (not a timing
assertion: the limit only stops a broken run from hanging), stopping a process, and the
headless Chromium the browser tests drive."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


def terminate(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM, as an operator stops luigid; kill only if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chromium_browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright, for a fixture to yield from; skips the
    test cleanly when Playwright or the browser is missing or cannot start."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"playwright is not installed: {exc}")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    manager = sync_playwright().start()
    try:
        try:
            chromium = manager.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.skip(f"Chromium could not start: {exc}")
        yield chromium
        chromium.close()
    finally:
        manager.stop()


def watch_page(page: Any, dialogs: list[str], errors: list[str]) -> None:
    """Record (and dismiss) every JavaScript dialog and uncaught error of ``page``: a test
    fails on either, so a payload that ran or a script that broke cannot go unnoticed."""

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda err: errors.append(str(err)))
