"""Immediate error mail (batch_emails = false), delivered to a real local SMTP server."""

from __future__ import annotations

import functools
import logging

import pytest

from luigid.config import ConfigError, SchedulerConfig
from luigid.core.model import FAILED, Task
from luigid.notify import disabled_task_email, make_notifier
from luigid.notify.mail import OutgoingMail
from luigid.notify.outbox import Outbox
from luigid.notify.settings import SmtpSettings
from luigid.notify.smtp_transport import deliver_smtp
from tests.notify.smtp import SilentServer, SmtpServer


def test_disable_email_reaches_the_receiver(smtp_server: SmtpServer) -> None:
    notifier = make_notifier(
        SchedulerConfig(),
        smtp_server.sections(receiver="ops@example.com, oncall@example.com", prefix="[prod]"),
    )
    notifier.start()
    notifier.send_error_email("Luigi Scheduler: DISABLED X due to excessive failures", "X failed 3 times")
    assert notifier.stop(10)

    (mail,) = smtp_server.inbox.wait_for(1)
    assert mail.mail_from == "luigid@example.com"
    assert mail.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert mail.subject == "[prod] Luigi Scheduler: DISABLED X due to excessive failures"
    assert mail.message["From"] == "luigid@example.com"
    assert [a.strip() for a in str(mail.message["To"]).split(",")] == [
        "ops@example.com",
        "oncall@example.com",
    ]
    assert mail.message.get_content_type() == "text/plain"
    assert mail.body.strip() == "X failed 3 times"


def test_html_format_sends_html(smtp_server: SmtpServer) -> None:
    notifier = make_notifier(
        SchedulerConfig(), smtp_server.sections(receiver="ops@example.com", format="html")
    )
    notifier.send_error_email("subject", "<b>failed</b>")
    notifier.stop(10)
    (mail,) = smtp_server.inbox.wait_for(1)
    assert mail.message.get_content_type() == "text/html"
    assert "<b>failed</b>" in mail.body


def test_disabled_task_email_is_luigis_text() -> None:
    config = SchedulerConfig(retry_count=3, disable_window=600, disable_persist=86400)
    task = Task("Ingest_2024_abc", FAILED, (), config.retry_policy(), family="Ingest")
    subject, body = disabled_task_email(task, config.disable_persist)
    assert subject == "Luigi Scheduler: DISABLED Ingest_2024_abc due to excessive failures"
    assert body == (
        "Ingest_2024_abc failed 3 times in the last 600 seconds, so it is being disabled for 86400 seconds"
    )


def test_legacy_core_keys_still_configure_mail(smtp_server: SmtpServer) -> None:
    sections = {
        "core": {
            "error-email": "legacy@example.com",
            "email-prefix": "LEGACY",
            "email-sender": "old-sender@example.com",
            "smtp_host": "127.0.0.1",
            "smtp_port": str(smtp_server.port),
        },
        "email": {"force_send": "true"},
    }
    notifier = make_notifier(SchedulerConfig(), sections)
    notifier.send_error_email("subject", "body")
    notifier.stop(10)
    (mail,) = smtp_server.inbox.wait_for(1)
    assert mail.rcpt_tos == ["legacy@example.com"]
    assert mail.mail_from == "old-sender@example.com"
    assert mail.subject == "LEGACY subject"


def test_smtp_login(smtp_server_with_login: SmtpServer) -> None:
    sections = smtp_server_with_login.sections(receiver="ops@example.com")
    sections["smtp"].update(username="scheduler", password="s3cret")
    notifier = make_notifier(SchedulerConfig(), sections)
    notifier.send_error_email("subject", "body")
    notifier.stop(10)
    smtp_server_with_login.inbox.wait_for(1)
    assert [login for login, _ in smtp_server_with_login.inbox.logins] == ["scheduler"]


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"receiver": ""}, None),
        ({"receiver": "ops@example.com", "format": "none"}, "email format is 'none'"),
        ({"receiver": "ops@example.com", "force_send": "false"}, "running from a tty"),
    ],
)
def test_luigis_reasons_not_to_send(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    options: dict[str, str],
    why: str | None,
) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr("sys.stdout", Terminal())
    caplog.set_level(logging.INFO, logger="luigid.notify")
    notifier = make_notifier(SchedulerConfig(), smtp_server.sections(**options))
    notifier.send_error_email("subject", "body")
    notifier.stop(10)
    assert notifier.mailer.outbox.delivered_batches == 0
    assert smtp_server.inbox.messages == []
    if why:
        assert why in caplog.text


@pytest.mark.parametrize(
    ("method", "hint"),
    [("ses", "email-smtp.<region>.amazonaws.com"), ("sendgrid", "smtp.sendgrid.net"), ("sns", "receiver")],
)
def test_other_methods_are_refused_in_one_line(method: str, hint: str) -> None:
    sections = {"email": {"receiver": "ops@example.com", "method": method}}
    with pytest.raises(ConfigError) as exc:
        make_notifier(SchedulerConfig(), sections)
    message = str(exc.value)
    assert message.startswith(f"luigid: config error in [email] method: {method} is not supported")
    assert hint in message and "\n" not in message


def test_other_method_without_anyone_to_mail_is_harmless() -> None:
    # a luigi.cfg shared with workers may name ses for them; with no receiver the scheduler sends nothing
    notifier = make_notifier(SchedulerConfig(), {"email": {"type": "ses"}})
    notifier.send_error_email("subject", "body")
    assert notifier.stop(1)


def test_bad_smtp_value_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        make_notifier(SchedulerConfig(), {"smtp": {"port": "smtp"}, "email": {"receiver": "a@example.com"}})
    assert str(exc.value) == "luigid: config error in [smtp] port: expected an integer, got 'smtp'"


def test_dead_smtp_server_costs_one_warning(dead_port: int, caplog: pytest.LogCaptureFixture) -> None:
    sections = {
        "email": {"receiver": "ops@example.com", "force_send": "true"},
        "smtp": {"host": "127.0.0.1", "port": str(dead_port)},
    }
    notifier = make_notifier(SchedulerConfig(), sections)
    notifier.send_error_email("subject", "body")
    assert notifier.stop(10)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "luigid.notify"]
    assert len(warnings) == 1
    assert f"cannot connect to SMTP server 127.0.0.1:{dead_port}" in warnings[0].getMessage()
    assert notifier.mailer.outbox.failed_batches == 1


def test_hung_smtp_server_never_holds_the_caller(
    silent_server: SilentServer, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(
        functools.partial(deliver_smtp, SmtpSettings(host="127.0.0.1", port=silent_server.port, timeout=60)),
        max_jobs=2,
    )
    mail = OutgoingMail("s@example.com", ("r@example.com",), "subject", "body")
    assert outbox.submit(lambda: [mail])
    assert silent_server.connected.wait(10)  # the mail thread now waits on a server that never answers

    # callers keep returning while that delivery hangs: two more fill the queue, the rest are dropped
    accepted = [outbox.submit(lambda: [mail]) for _ in range(2)]
    dropped = [outbox.submit(lambda: [mail]) for _ in range(5)]
    assert accepted == [True, True]
    assert dropped == [False] * 5
    assert outbox.pending == 3 and outbox.dropped == 5
    assert outbox.delivered_batches == 0 and outbox.failed_batches == 0  # still stuck on the first
    assert "email dropped" in caplog.text

    # the server hangs up: the stuck delivery fails, then the queued ones, each with one warning
    silent_server.hang_up()
    assert outbox.stop(60)
    assert outbox.pending == 0
    assert outbox.failed_batches == 3
    failures = [r for r in caplog.records if r.getMessage().startswith("could not send email")]
    assert len(failures) == 3
