"""The ``[email]``, ``[smtp]`` and batch-notifier sections, with luigi's defaults and old key names.

luigi still honours the ``[core]`` keys its email options were first read from (``error-email``,
``smtp_host``...) and ``[email] type`` for ``method``; they are accepted here as fallbacks so
that an existing luigi.cfg keeps working.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from luigid.config import get_bool, get_choice, get_float, get_int, get_str

Sections = Mapping[str, Mapping[str, Any]] | None

_ABSENT: Any = object()


def _first(
    get: Callable[..., Any], sections: Sections, where: Sequence[tuple[str, str]], default: Any, *extra: Any
) -> Any:
    """The value of the first (section, key) in ``where`` that is set, parsed by a config ``get_*``."""
    for section, key in where:
        value = get(sections or {}, section, key, *extra, _ABSENT)
        if value is not _ABSENT:
            return value
    return default


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
        base = cls()
        return cls(
            receiver=_first(
                get_str, sections, [("email", "receiver"), ("core", "error-email")], base.receiver
            ),
            sender=_first(get_str, sections, [("email", "sender"), ("core", "email-sender")], base.sender),
            prefix=_first(get_str, sections, [("email", "prefix"), ("core", "email-prefix")], base.prefix),
            method=_first(
                get_choice, sections, [("email", "method"), ("email", "type")], base.method, EMAIL_METHODS
            ),
            format=_first(
                get_choice,
                sections,
                [("email", "format"), ("core", "email-type")],
                base.format,
                EMAIL_FORMATS,
            ),
            force_send=_first(get_bool, sections, [("email", "force_send")], base.force_send),
            traceback_max_length=_first(
                get_int, sections, [("email", "traceback_max_length")], base.traceback_max_length
            ),
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
        base = cls()

        def read(get: Callable[..., Any], key: str, legacy: str, default: Any) -> Any:
            return _first(get, sections, [("smtp", key), ("core", legacy)], default)

        return cls(
            host=read(get_str, "host", "smtp_host", base.host) or base.host,
            port=read(get_int, "port", "smtp_port", base.port),
            ssl=read(get_bool, "ssl", "smtp_ssl", base.ssl),
            no_tls=read(get_bool, "no_tls", "smtp_without_tls", base.no_tls),
            username=read(get_str, "username", "smtp_login", None) or None,
            password=read(get_str, "password", "smtp_password", None) or None,
            timeout=read(get_float, "timeout", "smtp_timeout", base.timeout),
            local_hostname=read(get_str, "local_hostname", "smtp_local_hostname", None) or None,
            tls_verify=_first(get_bool, sections, [("smtp", "tls_verify")], base.tls_verify),
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
        base = cls()

        def read(get: Callable[..., Any], key: str, default: Any, *extra: Any) -> Any:
            where = [(section, key) for section in BATCH_SECTIONS]
            if key == "email_interval":
                where.append(("batch-notifier", "email-interval-minutes"))
            return _first(get, sections, where, default, *extra)

        return cls(
            email_interval=read(get_int, "email_interval", base.email_interval),
            batch_mode=read(get_choice, "batch_mode", base.batch_mode, BATCH_MODES),
            error_lines=read(get_int, "error_lines", base.error_lines),
            error_messages=read(get_int, "error_messages", base.error_messages),
            group_by_error_messages=read(get_bool, "group_by_error_messages", base.group_by_error_messages),
        )


def split_addresses(text: str | None) -> list[str]:
    """Comma-separated addresses, as luigi accepts them in one option or one owner entry."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
