"""The headless Chromium the browser tests drive, and a watch on what a page raises."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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
