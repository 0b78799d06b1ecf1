"""Delivers a batch of mails over one SMTP connection (runs on the outbox thread, never the loop)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence

from luigid.notify.mail import OutgoingMail
from luigid.notify.settings import SmtpSettings


class DeliveryError(Exception):
    """Some or all of a batch was not accepted; the message says how many and why, in one line."""


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    if settings.tls_verify:
        return ssl.create_default_context()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def deliver_smtp(settings: SmtpSettings, mails: Sequence[OutgoingMail]) -> None:
    """Send ``mails``; raise ``DeliveryError`` once for the whole batch if anything failed."""
    if not mails:
        return
    options: dict = {"host": settings.host, "port": settings.port, "local_hostname": settings.local_hostname}
    if settings.timeout:
        options["timeout"] = settings.timeout
    where = f"{settings.host}:{settings.port or ('465' if settings.ssl else '25')}"
    try:
        if settings.ssl:
            connection: smtplib.SMTP = smtplib.SMTP_SSL(context=_tls_context(settings), **options)
        else:
            connection = smtplib.SMTP(**options)
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(_rejected(where, exc)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"cannot connect to SMTP server {where}: {_describe(exc)}") from exc

    refused: list[str] = []
    try:
        with connection:
            connection.ehlo_or_helo_if_needed()
            if not settings.no_tls and connection.has_extn("starttls"):
                connection.starttls(context=_tls_context(settings))
                connection.ehlo()
            if settings.username and settings.password:
                connection.login(settings.username, settings.password)
            for mail in mails:
                try:
                    connection.send_message(mail.to_message(), mail.sender, list(mail.recipients))
                except smtplib.SMTPRecipientsRefused as exc:
                    refused.append(f"{', '.join(exc.recipients)} refused")
                except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                    refused.append(_describe(exc))
    except ssl.SSLCertVerificationError as exc:  # on STARTTLS
        raise DeliveryError(_rejected(where, exc)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP server {where} failed: {_describe(exc)}") from exc
    if refused:
        raise DeliveryError(f"{len(refused)} of {len(mails)} emails not accepted by {where}: {refused[0]}")


#: OpenSSL's verify codes for a certificate that names another host (X509_V_ERR_*_MISMATCH)
_NAME_MISMATCH = frozenset({62, 64})
#: ... and for one whose issuer is not trusted here (self-signed, private or missing CA)
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})


def _rejected(where: str, exc: ssl.SSLCertVerificationError) -> str:
    """One line an operator can act on: why the certificate failed and the way out."""
    why = " ".join(str(exc.verify_message or exc.reason or exc).split()).rstrip(".")
    if exc.verify_code in _NAME_MISMATCH:
        fix = "set [smtp] host to a name on its certificate, or set [smtp] tls_verify = false"
    elif exc.verify_code in _UNTRUSTED:
        fix = "point SSL_CERT_FILE at a CA bundle holding its issuer, or set [smtp] tls_verify = false"
    else:
        fix = "set [smtp] tls_verify = false to send anyway"
    return f"certificate of SMTP server {where} rejected: {why} ({fix})"


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
