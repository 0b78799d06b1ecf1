"""Batched summaries: delivered per owner over real SMTP, timed by [batch_email], worded as luigi's."""

from __future__ import annotations

import itertools
import types
from collections.abc import Sequence
from typing import Any

import luigi.batch_notifier
import pytest

from luigid.config import SchedulerConfig
from luigid.notify import make_batch_notifier
from luigid.notify.batch_notifier import BatchNotifier
from luigid.notify.mail import OutgoingMail
from luigid.notify.mailer import Mailer
from luigid.notify.outbox import Outbox
from luigid.notify.settings import BatchSettings, EmailSettings
from tests.notify.smtp import SmtpServer
from tests.support import FakeClock

TRACEBACK = (
    'Traceback (most recent call last):\n  File "x.py", line 3, in run\n    boom()\nValueError: bad row 17\n'
)
OTHER_TRACEBACK = "Traceback (most recent call last):\n  File \"y.py\", line 9\nKeyError: 'region'\n"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return FakeClock().install(monkeypatch)


def test_summaries_go_to_receiver_and_owners_after_the_interval(
    smtp_server: SmtpServer, clock: FakeClock
) -> None:
    sections = smtp_server.sections(receiver="ops@example.com")
    sections["batch_email"] = {"email_interval": "5"}
    notifier = make_batch_notifier(SchedulerConfig(batch_emails=True), sections)
    notifier.start()
    notifier.add_failure(
        "Ingest(date=2024-01-01)", "Ingest", {"date": "2024-01-01"}, TRACEBACK, ["ana@example.com"]
    )
    notifier.add_failure(
        "Ingest(date=2024-01-01)", "Ingest", {"date": "2024-01-01"}, TRACEBACK, ["ana@example.com"]
    )
    notifier.add_disable("Ingest(date=2024-01-01)", "Ingest", {"date": "2024-01-01"}, ["ana@example.com"])
    notifier.add_scheduling_fail("Report()", "Report", {}, OTHER_TRACEBACK, [])

    clock.now += 4 * 60
    notifier.update()  # too early: nothing is sent
    clock.now += 60
    notifier.update()
    assert notifier.stop(10)

    messages = smtp_server.inbox.wait_for(2)
    assert len(messages) == 2
    (ops,) = smtp_server.inbox.to("ops@example.com")
    (ana,) = smtp_server.inbox.to("ana@example.com")
    assert ops.rcpt_tos == ["ops@example.com"] and ana.rcpt_tos == ["ana@example.com"]
    assert ops.subject == "Luigi: 2 failures, 1 disable, 1 scheduling failure in the last 5 minutes"
    assert ana.subject == "Luigi: Your tasks have 2 failures, 1 disable in the last 5 minutes"
    assert ops.body.strip("\n") == (
        "- Ingest(date=2024-01-01) (2 failures, 1 disable)\n"
        "\n"
        "      Traceback (most recent call last):\n"
        '        File "x.py", line 3, in run\n'
        "          boom()\n"
        "      ValueError: bad row 17\n"
        "\n"
        "- Report() (1 scheduling failure)\n"
        "\n"
        "      Traceback (most recent call last):\n"
        '        File "y.py", line 9\n'
        "      KeyError: 'region'"
    )
    assert "Report()" not in ana.body


def test_counters_restart_after_each_send(smtp_server: SmtpServer, clock: FakeClock) -> None:
    notifier = make_batch_notifier(
        SchedulerConfig(batch_emails=True), smtp_server.sections(receiver="ops@example.com")
    )
    notifier.add_failure("A()", "A", {}, "first", [])
    notifier.send_email()  # what the scheduler does at shutdown
    clock.now += 3600
    notifier.update()  # nothing new happened: no mail
    notifier.add_failure("B()", "B", {}, "second", [])
    clock.now += 3600
    notifier.update()
    notifier.stop(10)
    first, second = smtp_server.inbox.wait_for(2)
    assert first.subject == "Luigi: 1 failure in the last 60 minutes"
    assert "A()" in first.body and "B()" not in first.body
    assert "B()" in second.body and "A()" not in second.body
    assert len(smtp_server.inbox.messages) == 2


def test_dead_smtp_server_costs_one_warning_per_batch(
    dead_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    sections = {
        "email": {"receiver": "ops@example.com", "force_send": "true"},
        "smtp": {"host": "127.0.0.1", "port": str(dead_port)},
    }
    notifier = make_batch_notifier(SchedulerConfig(batch_emails=True), sections)
    for owner in ("a@example.com", "b@example.com", "c@example.com"):
        notifier.add_failure("A()", "A", {}, "boom", [owner])
    notifier.send_email()  # four recipients, one batch
    assert notifier.stop(10)
    warnings = [r for r in caplog.records if r.name == "luigid.notify" and r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "cannot connect to SMTP server" in warnings[0].getMessage()


def test_method_other_than_smtp_is_refused_for_batches_even_without_receiver() -> None:
    from luigid.config import ConfigError

    with pytest.raises(ConfigError, match=r"^luigid: config error in \[email\] method: sns is not supported"):
        make_batch_notifier(SchedulerConfig(batch_emails=True), {"email": {"method": "sns"}})


# -- same summaries as luigi's own BatchNotifier ----------------------------------------------

EVENTS = [
    ("failure", "Ingest(date=1, region=eu)", "Ingest", {"region": "eu"}, TRACEBACK, ["ana@example.com"]),
    ("failure", "Ingest(date=2, region=eu)", "Ingest", {"region": "eu"}, TRACEBACK, ["ana@example.com"]),
    ("failure", "Ingest(date=3, region=us)", "Ingest", {"region": "us"}, OTHER_TRACEBACK, ["bo@example.com"]),
    ("disable", "Ingest(date=3, region=us)", "Ingest", {"region": "us"}, None, ["bo@example.com"]),
    ("scheduling", "Report(day=1)", "Report", {"day": "1"}, "Can't pickle task\nline two", []),
    ("failure", "Report(day=1)", "Report", {"day": "1"}, TRACEBACK, ["ana@example.com", "bo@example.com"]),
    ("failure", "Clean()", "Clean", {}, "disk full", []),
    ("failure", "Clean()", "Clean", {}, "disk still full", []),
    ("failure", "Clean()", "Clean", {}, "disk full", []),
    ("disable", "Clean()", "Clean", {}, None, []),
]


def feed(notifier: Any, events: list[tuple[Any, ...]]) -> None:
    for kind, name, family, params, expl, owners in events:
        if kind == "failure":
            notifier.add_failure(name, family, params, expl, owners)
        elif kind == "disable":
            notifier.add_disable(name, family, params, owners)
        else:
            notifier.add_scheduling_fail(name, family, params, expl, owners)


def luigis_summaries(
    monkeypatch: pytest.MonkeyPatch, settings: BatchSettings, email_format: str, receiver: str
) -> dict:
    sent = {}
    fake_email = types.SimpleNamespace(format=email_format, receiver=receiver, sender="luigid@example.com")
    monkeypatch.setattr(luigi.batch_notifier, "email", lambda: fake_email)
    monkeypatch.setattr(
        luigi.batch_notifier,
        "send_email",
        lambda subject, body, sender, recipients: sent.update({recipients[0]: (subject, body)}),
    )
    notifier = luigi.batch_notifier.BatchNotifier(
        email_interval=settings.email_interval,
        batch_mode=settings.batch_mode,
        error_lines=settings.error_lines,
        error_messages=settings.error_messages,
        group_by_error_messages=settings.group_by_error_messages,
    )
    feed(notifier, EVENTS)
    notifier.send_email()
    return sent


def our_summaries(settings: BatchSettings, email_format: str, receiver: str) -> dict:
    sent = {}

    def capture(mails: Sequence[OutgoingMail]) -> None:
        for mail in mails:
            sent[mail.recipients[0]] = (mail.subject, mail.body)

    email = EmailSettings(receiver=receiver, format=email_format, force_send=True)
    notifier = BatchNotifier(settings, Mailer(email, Outbox(capture)))
    feed(notifier, EVENTS)
    notifier.send_email()
    assert notifier.stop(10)
    return sent


@pytest.mark.parametrize(
    ("batch_mode", "email_format", "group_by", "error_lines", "error_messages"),
    [
        *itertools.product(
            ("all", "family", "unbatched_params"), ("plain", "html"), (True, False), (20,), (1,)
        ),
        ("unbatched_params", "plain", True, 2, 1),
        ("unbatched_params", "plain", True, 0, 1),
        ("family", "plain", True, 20, 3),
        ("all", "html", False, 1, 2),
        ("all", "plain", True, 20, 0),
    ],
)
@pytest.mark.parametrize("receiver", ["ops@example.com", ""])
def test_summaries_match_luigis(
    monkeypatch: pytest.MonkeyPatch,
    batch_mode: str,
    email_format: str,
    group_by: bool,
    error_lines: int,
    error_messages: int,
    receiver: str,
) -> None:
    settings = BatchSettings(
        email_interval=15,
        batch_mode=batch_mode,
        error_lines=error_lines,
        error_messages=error_messages,
        group_by_error_messages=group_by,
    )
    expected = luigis_summaries(monkeypatch, settings, email_format, receiver)
    assert expected  # the scenario does produce mail
    assert our_summaries(settings, email_format, receiver) == expected


def test_missing_owners_and_non_text_explanations_are_tolerated() -> None:
    # luigi's own notifier raises on these; a scheduler must not
    sent = {}
    email = EmailSettings(receiver="ops@example.com", force_send=True)
    notifier = BatchNotifier(
        BatchSettings(), Mailer(email, Outbox(lambda mails: sent.update({m.recipients: m for m in mails})))
    )
    notifier.add_failure("A()", "A", None, {"error": "structured"}, None)
    notifier.add_scheduling_fail("B()", "B", {}, None, "ana@example.com, bo@example.com")
    notifier.send_email()
    assert notifier.stop(10)
    assert set(sent) == {("ops@example.com",), ("ana@example.com",), ("bo@example.com",)}
    assert "{'error': 'structured'}" in sent[("ops@example.com",)].body
    assert (
        sent[("ana@example.com",)].subject
        == "Luigi: Your tasks have 1 scheduling failure in the last 60 minutes"
    )
