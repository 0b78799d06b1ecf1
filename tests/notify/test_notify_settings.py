"""[email], [smtp] and batch settings: luigi's defaults, its old key names and section names."""

from __future__ import annotations

import pytest

from luigid.config import ConfigError
from luigid.notify.settings import BatchSettings, EmailSettings, SmtpSettings


def test_luigis_defaults() -> None:
    assert BatchSettings.from_sections({}) == BatchSettings(60, "unbatched_params", 20, 1, True)
    email = EmailSettings.from_sections(None)
    assert (email.method, email.format, email.receiver, email.force_send) == ("smtp", "plain", "", False)
    assert email.sender.startswith("luigi-client@")
    smtp = SmtpSettings.from_sections({})
    assert (smtp.host, smtp.port, smtp.timeout, smtp.ssl, smtp.no_tls) == ("localhost", 0, 10.0, False, False)


@pytest.mark.parametrize(
    "sections",
    [
        {"batch_email": {"email_interval": "5", "batch_mode": "family"}},
        {"batch_notifier": {"email-interval": "5", "batch_mode": "family"}},
        {"batch-notifier": {"email-interval-minutes": "5"}, "batch_email": {"batch_mode": "family"}},
    ],
)
def test_batch_section_spellings(sections: dict[str, dict[str, str]]) -> None:
    settings = BatchSettings.from_sections(sections)
    assert (settings.email_interval, settings.batch_mode) == (5, "family")


def test_new_keys_win_over_old_ones() -> None:
    sections = {
        "email": {"method": "smtp", "type": "ses", "format": "html"},
        "core": {"email-type": "none", "smtp_host": "old.example.com", "smtp_login": "old"},
        "smtp": {"host": "new.example.com"},
    }
    email = EmailSettings.from_sections(sections)
    smtp = SmtpSettings.from_sections(sections)
    assert (email.method, email.format) == ("smtp", "html")
    assert (smtp.host, smtp.username) == ("new.example.com", "old")


def test_password_stays_out_of_repr() -> None:
    smtp = SmtpSettings.from_sections({"smtp": {"username": "u", "password": "hunter2"}})
    assert smtp.password == "hunter2"
    assert "hunter2" not in repr(smtp)


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"batch_email": {"batch_mode": "owner"}}, "[batch_email] batch_mode: expected one of family, all"),
        ({"email": {"format": "rtf"}}, "[email] format: expected one of plain, html, none, got 'rtf'"),
        ({"smtp": {"ssl": "yes"}}, "[smtp] ssl: expected true or false, got 'yes'"),
        ({"core": {"smtp_timeout": "soon"}}, "[core] smtp_timeout: expected a number, got 'soon'"),
    ],
)
def test_bad_values_name_section_and_key(sections: dict[str, dict[str, str]], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        BatchSettings.from_sections(sections)
        EmailSettings.from_sections(sections)
        SmtpSettings.from_sections(sections)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)
