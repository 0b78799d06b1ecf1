"""Builds the scheduler's notifiers from config, refusing what luigid cannot send in one line."""

from __future__ import annotations

import functools
from typing import Any

from luigid.config import config_error
from luigid.notify.batch_notifier import BatchNotifier
from luigid.notify.error_notifier import ErrorNotifier
from luigid.notify.mailer import Mailer
from luigid.notify.outbox import Outbox
from luigid.notify.settings import BatchSettings, EmailSettings, Sections, SmtpSettings
from luigid.notify.smtp_transport import deliver_smtp

#: what to do instead, for each luigi email method luigid does not implement
_INSTEAD = {
    "ses": "set method = smtp, [smtp] host = email-smtp.<region>.amazonaws.com and SES SMTP credentials",
    "sendgrid": "set method = smtp, [smtp] host = smtp.sendgrid.net, username = apikey, password = <API key>",
    "sns": "set method = smtp and list the topic's subscriber addresses in [email] receiver",
}


def _mailer(sections: Sections, will_send: bool) -> Mailer:
    email = EmailSettings.from_sections(sections)
    smtp = SmtpSettings.from_sections(sections)
    if will_send and email.format != "none" and email.method != "smtp":
        key = "method" if "method" in (sections or {}).get("email", {}) else "type"
        problem = f"{email.method} is not supported by the luigid scheduler; {_INSTEAD[email.method]}"
        raise config_error(sections or {}, "email", key, problem)
    return Mailer(email, Outbox(functools.partial(deliver_smtp, smtp)))


def make_notifier(scheduler_config: Any, sections: Sections) -> ErrorNotifier:
    """Immediate error mail (``send_error_email``) to ``[email] receiver``."""
    email = EmailSettings.from_sections(sections)
    return ErrorNotifier(_mailer(sections, will_send=bool(email.default_recipients())))


def make_batch_notifier(scheduler_config: Any, sections: Sections) -> BatchNotifier:
    """Batched summaries for ``[scheduler] batch_emails = true`` (owners get mail even without a receiver)."""
    return BatchNotifier(BatchSettings.from_sections(sections), _mailer(sections, will_send=True))
