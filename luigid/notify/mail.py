"""One outgoing email, and its MIME form."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True)
class OutgoingMail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    #: "plain" or "html", from ``[email] format``
    subtype: str = "plain"

    def to_message(self) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = self.subject
        message["From"] = self.sender
        message["To"] = ",".join(self.recipients)
        message.set_content(self.body, subtype=self.subtype, charset="utf-8")
        return message
