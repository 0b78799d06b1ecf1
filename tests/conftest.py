"""Suite-wide rules and fixtures.

Like Tornado's own test runner, a test fails when luigid logs an error it did not expect:
an unexpected traceback in the server is a bug even when the reply looked fine. A test
that provokes errors on purpose asks for the ``allow_error_logs`` fixture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium_browser
from tests.support.cli import CliLuigid, luigid_factory


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def allow_error_logs() -> None:
    """Marks a test as expecting error-level log records."""


@pytest.fixture(autouse=True)
def _fail_on_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    collector = _ErrorCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.records and "allow_error_logs" not in request.fixturenames:
        lines = "; ".join(f"{r.name}: {r.getMessage()}" for r in collector.records[:5])
        pytest.fail(f"unexpected error log output: {lines}")


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
    """Headless Chromium. Per module, not per session: Playwright's sync API keeps an asyncio
    loop marked as running while it lives, which later Tornado test cases could not share."""
    yield from chromium_browser()


@pytest.fixture
def luigids(tmp_path: Path) -> Iterator[Callable[..., CliLuigid]]:
    """``luigids(*args, config=..., state_path=..., port=..., syntax=...)`` -> a CliLuigid to start;
    any still running at the end is killed."""
    yield from luigid_factory(tmp_path)
