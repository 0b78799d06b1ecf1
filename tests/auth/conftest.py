"""Fixtures for the security tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.processes import chromium_browser


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while
    it lives, which later Tornado test cases could not share."""
    yield from chromium_browser()
