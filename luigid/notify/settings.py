"""The ``[email]``, ``[smtp]`` and batch-notifier sections, with luigi's defaults and old key names.

luigi still honours the ``[core]`` keys its email options were first read from (``error-email``,
``smtp_host``...) and ``[email] type`` for ``method``; they are accepted here as fallbacks so
that an existing luigi.cfg keeps working.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from luigid.metrics.section_reader import SectionReader

Sections = Mapping[str, Mapping[str, Any]] | None

EMAIL_FORMATS = ("plain", "html", "none")
EMAIL_METHODS = ("smtp", "sendgrid", "ses", "sns")
BATCH_MODES = ("family", "all", "unbatched_params")
#: luigi calls the batch section after its config class, ``batch_email``; ``batch_notifier`` is
#: accepted too, and ``[batch-notifier] email-interval-minutes`` is luigi's oldest spelling
BATCH_SECTIONS = ("batch_email", "batch_notifier")


@dataclass(frozen=True)
class EmailSettings:
    receiver: str = ""
    sender: str = f"luigi-client@{socket.gethostname()}"
    prefix: str = ""
    method: str = "smtp"
    format: str = "plain"
    force_send: bool = False
    traceback_max_length: int = 5000

    @classmethod
    def from_sections(cls, sections: Sections) -> EmailSettings:
        read = SectionReader(sections)
        base = cls()
        return cls(
            receiver=read.string([("email", "receiver"), ("core", "error-email")], base.receiver) or "",
            sender=read.string([("email", "sender"), ("core", "email-sender")], base.sender) or "",
            prefix=read.string([("email", "prefix"), ("core", "email-prefix")], base.prefix) or "",
            method=read.choice([("email", "method"), ("email", "type")], base.method, EMAIL_METHODS),
            format=read.choice([("email", "format"), ("core", "email-type")], base.format, EMAIL_FORMATS),
            force_send=read.boolean([("email", "force_send")], base.force_send),
            traceback_max_length=read.integer([("email", "traceback_max_length")], base.traceback_max_length),
        )

    def default_recipients(self) -> list[str]:
        return split_addresses(self.receiver)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 0  # 0: smtplib's default for the protocol (25, or 465 with ssl)
    ssl: bool = False
    no_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    local_hostname: str | None = None
    #: luigid's addition: check the server's certificate on SSL/STARTTLS (luigi never does)
    tls_verify: bool = True

    @classmethod
    def from_sections(cls, sections: Sections) -> SmtpSettings:
        read = SectionReader(sections)
        base = cls()
        return cls(
            host=read.string([("smtp", "host"), ("core", "smtp_host")], base.host) or base.host,
            port=read.integer([("smtp", "port"), ("core", "smtp_port")], base.port),
            ssl=read.boolean([("smtp", "ssl"), ("core", "smtp_ssl")], base.ssl),
            no_tls=read.boolean([("smtp", "no_tls"), ("core", "smtp_without_tls")], base.no_tls),
            username=read.string([("smtp", "username"), ("core", "smtp_login")], None) or None,
            password=read.string([("smtp", "password"), ("core", "smtp_password")], None) or None,
            timeout=read.number([("smtp", "timeout"), ("core", "smtp_timeout")], base.timeout),
            local_hostname=read.string([("smtp", "local_hostname"), ("core", "smtp_local_hostname")], None)
            or None,
            tls_verify=read.boolean([("smtp", "tls_verify")], base.tls_verify),
        )

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, ssl={self.ssl}, username={self.username!r})"
        )


@dataclass(frozen=True)
class BatchSettings:
    email_interval: int = 60  # minutes
    batch_mode: str = "unbatched_params"
    error_lines: int = 20  # 0: every line
    error_messages: int = 1
    group_by_error_messages: bool = True

    @classmethod
    def from_sections(cls, sections: Sections) -> BatchSettings:
        read = SectionReader(sections)
        base = cls()

        def where(key: str) -> list[tuple[str, str]]:
            return [(section, key) for section in BATCH_SECTIONS]

        return cls(
            email_interval=read.integer(
                [*where("email_interval"), ("batch-notifier", "email-interval-minutes")], base.email_interval
            ),
            batch_mode=read.choice(where("batch_mode"), base.batch_mode, BATCH_MODES),
            error_lines=read.integer(where("error_lines"), base.error_lines),
            error_messages=read.integer(where("error_messages"), base.error_messages),
            group_by_error_messages=read.boolean(
                where("group_by_error_messages"), base.group_by_error_messages
            ),
        )


def split_addresses(text: str | None) -> list[str]:
    """Comma-separated addresses, as luigi accepts them in one option or one owner entry."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
