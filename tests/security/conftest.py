"""Fixtures for the security tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def luigi_fast_retries() -> Iterator[None]:
    """luigi's RemoteScheduler in this process: one attempt, no waiting (its defaults retry
    three times, 30 s apart)."""
    from luigi.configuration import get_config

    config = get_config()
    saved = {key: config.get("core", key, None) for key in ("rpc_retry_attempts", "rpc_retry_wait")}
    if not config.has_section("core"):
        config.add_section("core")
    config.set("core", "rpc_retry_attempts", "1")
    config.set("core", "rpc_retry_wait", "0")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                config.remove_option("core", key)
            else:
                config.set("core", key, value)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright, as the UI tests launch it (skips cleanly
    when either is missing). Module-scoped: Playwright's sync API keeps an event loop running
    in this thread while it lives, which later Tornado test cases could not share."""
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
