"""Turns (subject, body, recipients) into mail per ``[email]`` and hands it to the outbox.

luigi's rules for whether to send at all are kept: nothing without recipients, nothing when
``format = none``, and nothing while stdout is a terminal unless ``force_send`` is set (so a
scheduler started by hand in a shell does not mail anyone).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence

from luigid.notify.mail import OutgoingMail
from luigid.notify.outbox import Outbox
from luigid.notify.settings import EmailSettings, split_addresses

logger = logging.getLogger("luigid.notify")


class Mailer:
    def __init__(self, settings: EmailSettings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    def why_not_sending(self) -> str | None:
        if self.settings.format == "none":
            return "email format is 'none'"
        if not self.settings.force_send and sys.stdout is not None and sys.stdout.isatty():
            return "running from a tty (set [email] force_send = true to send anyway)"
        return None

    def compose(self, subject: str, body: str, recipients: Iterable[str | None]) -> OutgoingMail | None:
        """The mail to send, or None (logged) when luigi's rules say not to send it."""
        addresses = tuple(dict.fromkeys(a for entry in recipients for a in split_addresses(entry)))
        if not addresses:
            return None
        reason = self.why_not_sending()
        if reason:
            logger.info("not sending email to %s because %s", ", ".join(addresses), reason)
            return None
        if self.settings.prefix:
            subject = f"{self.settings.prefix} {subject}"
        return OutgoingMail(self.settings.sender, addresses, subject, body, self.settings.format)

    def submit(self, job: Callable[[], Sequence[OutgoingMail]]) -> bool:
        return self.outbox.submit(job)

    def start(self) -> None:
        self.outbox.start()

    def stop(self, timeout: float = 10.0) -> bool:
        return self.outbox.stop(timeout)
