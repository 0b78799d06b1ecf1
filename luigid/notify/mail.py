"""One outgoing email, and its MIME form."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy

#: fold headers only where SMTP requires it; at the usual 78 columns Python moves a long subject
#: onto a continuation line of its own, which some clients show with a stray leading space
_POLICY = default_policy.clone(max_line_length=998)


@dataclass(frozen=True)
class OutgoingMail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    #: "plain" or "html", from ``[email] format``
    subtype: str = "plain"

    def to_message(self) -> EmailMessage:
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = self.subject
        message["From"] = self.sender
        message["To"] = ",".join(self.recipients)
        message.set_content(self.body, subtype=self.subtype, charset="utf-8")
        return message
