"""Suite-wide rules.

Like Tornado's own test runner, a test fails when luigid logs an error it did not expect:
an unexpected traceback in the server is a bug even when the reply looked fine. A test
that provokes errors on purpose asks for the ``allow_error_logs`` fixture.
"""

from __future__ import annotations

import logging

import pytest


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
def _fail_on_error_logs(request: pytest.FixtureRequest):
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
