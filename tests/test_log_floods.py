"""No log floods: a fault that repeats in a loop writes at most a few lines a second.

Each case drives one fault as fast as it comes for a bounded time and counts every line
logged meanwhile (any logger, WARNING and up). Before the shared throttle some of these wrote
a line per event: tens of thousands a second. The descriptor case (accept failing with EMFILE)
runs a real daemon: tests/runtime/test_exhaustion.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from luigid.config import SchedulerConfig
from luigid.core.model import PENDING, Task
from luigid.core.ports import tell_history
from luigid.metrics.datadog_collector import _throttle_client_warnings
from luigid.metrics.prometheus_collector import PrometheusCollector
from luigid.notify.mail import OutgoingMail
from luigid.notify.outbox import Outbox
from luigid.storage.changelog import LocalChangeLog
from luigid.storage.journal import Journal

#: how long each fault is repeated
WINDOW = 1.0
#: lines allowed in that window: "a few lines a second"
MOST_LINES = 5


def lines_while_repeating(caplog: pytest.LogCaptureFixture, fault: Callable[[], Any]) -> tuple[int, int]:
    """(lines logged, times the fault ran) over WINDOW seconds of running it back to back."""
    caplog.clear()
    runs = 0
    with caplog.at_level(logging.WARNING):
        deadline = time.monotonic() + WINDOW
        while time.monotonic() < deadline:
            fault()
            runs += 1
    return len(caplog.records), runs


def assert_no_flood(caplog: pytest.LogCaptureFixture, fault: Callable[[], Any]) -> None:
    lines, runs = lines_while_repeating(caplog, fault)
    assert runs > 100, "the fault did not repeat enough to show a flood"
    assert 1 <= lines <= MOST_LINES, f"{lines} lines for {runs} faults in {WINDOW} s: {caplog.text[:2000]}"


def test_status_journal_on_a_missing_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = Journal(str(tmp_path / "gone" / "state.pickle"))  # every write fails
    assert_no_flood(caplog, lambda: journal.record("T_1", "DONE", 1.0))


def test_change_log_on_a_missing_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = LocalChangeLog(str(tmp_path / "gone" / "state.pickle"), "no")  # every write fails
    try:
        assert_no_flood(caplog, lambda: log.append("ping", b'{"worker":"w"}', 1.0, []))
    finally:
        log.close()


class BrokenHistory:
    def task_scheduled(self, task: Task) -> None:
        raise RuntimeError("database is gone")

    task_finished = task_started = task_scheduled


def test_a_failing_task_history(caplog: pytest.LogCaptureFixture) -> None:
    task = Task("Ingest_1", PENDING, (), SchedulerConfig().retry_policy(), family="Ingest")
    history = BrokenHistory()
    assert_no_flood(caplog, lambda: tell_history(history, task, "PENDING"))  # type: ignore[arg-type]


def test_smtp_down_under_a_stream_of_mail(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(mails: object) -> None:
        raise ConnectionRefusedError("SMTP server localhost:25 refused the connection")

    outbox = Outbox(refuse, max_jobs=10)
    mail = OutgoingMail("luigid@example.com", ("ops@example.com",), "failed", "body")

    def submit() -> None:
        outbox.submit(lambda: [mail])
        time.sleep(0.0001)  # let the sender thread fail some (queue full drops the rest)

    try:
        assert_no_flood(caplog, submit)
    finally:
        outbox.stop(10)
    assert outbox.failed_batches > 100


def test_a_broken_metrics_probe_scraped_in_a_loop(caplog: pytest.LogCaptureFixture) -> None:
    collector = PrometheusCollector.from_sections({})

    def broken() -> dict[str, Any]:
        raise RuntimeError("state is busy")

    collector.set_state_probe(broken)
    assert_no_flood(caplog, collector.generate_latest)


def test_datadog_agent_gone(caplog: pytest.LogCaptureFixture) -> None:
    _throttle_client_warnings()
    client = logging.getLogger("datadog.dogstatsd")
    assert_no_flood(caplog, lambda: client.warning("Error submitting packet: [Errno 111] Connection refused"))
