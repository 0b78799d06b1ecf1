"""E-mail over implicit TLS (``[smtp] ssl = true``) and STARTTLS, against a real aiosmtpd server.

A throwaway CA and server certificates are made at test time with ``cryptography``; the
client trusts that CA through ``SSL_CERT_FILE`` (read by ``ssl.create_default_context``, so
by luigid's SMTP client), which is also how an operator trusts a private mail relay. The
mail comes from a real ``Scheduler``: a task disabled for failures (immediate mail) and a
``batch_emails`` summary. A certificate the client must reject costs one warning line per
delivery, never a traceback, and the scheduler keeps answering.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from luigid.config import LuigidConfig, SchedulerConfig
from luigid.core.model import DISABLED, FAILED
from luigid.scheduler import Scheduler
from tests.notify.smtp import Delivered, LoopbackController, SmtpServer, start_smtp
from tests.support import Luigid, wait_for
from tests.support.cli import call

MODES = ("ssl", "starttls")
DISABLE_SUBJECT = "Luigi Scheduler: DISABLED Ingest_1 due to excessive failures"
BATCH_SUBJECT = "Luigi: 1 failure, 1 disable in the last 60 minutes"
RECEIVER = "ops@example.com"


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    #: the CA the client is told to trust (SSL_CERT_FILE)
    ca: Path
    #: signed by that CA for 127.0.0.1: accepted
    good: KeyPair
    #: signed by that CA, but for another host name: rejected (hostname mismatch)
    wrong_host: KeyPair
    #: self-signed for 127.0.0.1, by no CA the client trusts: rejected
    self_signed: KeyPair
    #: signed by that CA for 127.0.0.1, but no longer valid: rejected
    expired: KeyPair


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, expired: bool = False
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        now -= datetime.timedelta(days=2)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _server_cert(
    directory: Path,
    stem: str,
    names: list[x509.GeneralName],
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    expired: bool = False,
) -> KeyPair:
    """A server certificate for ``names``, signed by ``issuer`` (self-signed when None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, signer = issuer if issuer is not None else (_name(stem), key)
    cert = (
        _builder(stem, issuer_name, key.public_key(), expired)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(signer, hashes.SHA256())
    )
    pair = KeyPair(directory / f"{stem}.pem", directory / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pair


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("certs")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("luigid test CA")
    ca = (
        _builder("luigid test CA", ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    loopback: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    elsewhere: list[x509.GeneralName] = [x509.DNSName("mail.example.com")]
    return Certificates(
        ca=ca_path,
        good=_server_cert(directory, "good", loopback, (ca_name, ca_key)),
        wrong_host=_server_cert(directory, "wrong-host", elsewhere, (ca_name, ca_key)),
        self_signed=_server_cert(directory, "self-signed", loopback, None),
        expired=_server_cert(directory, "expired", loopback, (ca_name, ca_key), expired=True),
    )


@pytest.fixture
def trust_test_ca(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client trusts the test CA and nothing else (whatever this machine's own bundle holds)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return certificates.ca


# ------------------------------------------------------------------ a TLS mail server


class StartServer(Protocol):
    def __call__(self, mode: str, pair: KeyPair, require_starttls: bool = True) -> SmtpServer: ...


@pytest.fixture
def tls_server() -> Iterator[StartServer]:
    """Factory: ``tls_server("ssl" | "starttls", key_pair)`` -> a running server presenting that certificate.

    ``ssl``: TLS from the first byte (SMTPS). ``starttls``: plain text until STARTTLS, which the
    server requires (unless told otherwise) before it accepts any mail, so a delivery proves the
    upgrade happened. Its ``sections()`` say ``ssl = true`` or take the default STARTTLS path.
    """
    controllers: list[LoopbackController] = []

    def start(mode: str, pair: KeyPair, require_starttls: bool = True) -> SmtpServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        options: dict[str, Any] = (
            {"ssl_context": context}
            if mode == "ssl"
            else {"tls_context": context, "require_starttls": require_starttls}
        )
        controller, inbox = start_smtp(**options)
        controllers.append(controller)
        return SmtpServer(inbox, controller.port, {"ssl": "true" if mode == "ssl" else "false"})

    yield start
    for controller in controllers:
        controller.stop()


# ------------------------------------------------------------------ the scheduler


def _scheduler(tmp_path: Path, sections: dict[str, dict[str, str]], batch_emails: bool) -> Scheduler:
    """A real Scheduler whose tasks are disabled at their first failure."""
    config = SchedulerConfig(
        retry_count=1, batch_emails=batch_emails, state_path=str(tmp_path / "state.pickle")
    )
    return Scheduler(LuigidConfig(scheduler=config, sections=sections))


def _fail_once(scheduler: Scheduler) -> None:
    scheduler.add_task(
        worker="w1",
        task_id="Ingest_1",
        family="Ingest",
        params={"date": "2024-01-01"},
        status=FAILED,
        expl="ValueError: bad row 17",
    )
    assert scheduler.task_list(DISABLED, "")["Ingest_1"]["status"] == DISABLED


def _send_batch(scheduler: Scheduler) -> None:
    scheduler.dump()  # what the daemon does at shutdown: save state, flush the batch summary


def _notify_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("luigid") and r.levelno >= logging.WARNING]


def _first_mail(
    tmp_path: Path, server: SmtpServer, sections: dict[str, dict[str, str]], batch_emails: bool = False
) -> tuple[Delivered, Scheduler]:
    """Disable Ingest_1 on a Scheduler configured by ``sections`` (then send the batch summary
    when batched) and return the one mail ``server`` received, with the closed scheduler."""
    scheduler = _scheduler(tmp_path, sections, batch_emails=batch_emails)
    try:
        _fail_once(scheduler)
        if batch_emails:
            _send_batch(scheduler)
        (mail,) = server.inbox.wait_for(1, timeout=15)
    finally:
        scheduler.close(10)
    return mail, scheduler


# ------------------------------------------------------------------ delivered over TLS


def _mail_over_tls(
    mode: str, tmp_path: Path, certificates: Certificates, tls_server: StartServer, batch_emails: bool
) -> Delivered:
    """The mail a trusted server received over TLS, checked for what every such mail shares."""
    server = tls_server(mode, certificates.good)
    mail, scheduler = _first_mail(tmp_path, server, server.sections(receiver=RECEIVER), batch_emails)
    assert mail.tls_version is not None and mail.tls_version.startswith("TLS")
    assert mail.rcpt_tos == [RECEIVER]
    notifier = scheduler.batch_notifier if batch_emails else scheduler.notifier
    assert notifier.mailer.outbox.failed_batches == 0
    return mail


@pytest.mark.parametrize("mode", MODES)
def test_disable_email_arrives_over_tls(
    mode: str,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
) -> None:
    mail = _mail_over_tls(mode, tmp_path, certificates, tls_server, batch_emails=False)
    assert mail.message["Subject"] == DISABLE_SUBJECT
    assert "Ingest_1 failed 1 times" in mail.message.get_content()


@pytest.mark.parametrize("mode", MODES)
def test_batch_email_arrives_over_tls(
    mode: str,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
) -> None:
    mail = _mail_over_tls(mode, tmp_path, certificates, tls_server, batch_emails=True)
    assert mail.message["Subject"] == BATCH_SUBJECT
    body = mail.message.get_content()
    assert "- Ingest(date=2024-01-01) (1 failure, 1 disable)" in body and "ValueError: bad row 17" in body


@pytest.mark.parametrize("mode", MODES)
def test_tls_verify_false_accepts_an_untrusted_certificate(
    mode: str,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
) -> None:
    # luigi never checked the certificate; an operator may keep that with tls_verify = false
    server = tls_server(mode, certificates.self_signed)
    sections = server.sections(receiver=RECEIVER)
    sections["smtp"]["tls_verify"] = "false"
    mail, _ = _first_mail(tmp_path, server, sections)
    assert mail.tls_version is not None and mail.message["Subject"] == DISABLE_SUBJECT


@pytest.mark.parametrize("no_tls", [False, True])
def test_no_tls_decides_whether_an_offered_starttls_is_used(
    no_tls: bool,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
) -> None:
    # as luigi: STARTTLS when the server offers it, unless no_tls; plain text when it does not
    server = tls_server("starttls", certificates.good, require_starttls=False)
    sections = server.sections(receiver=RECEIVER)
    sections["smtp"]["no_tls"] = str(no_tls).lower()
    mail, _ = _first_mail(tmp_path, server, sections)
    assert mail.message["Subject"] == DISABLE_SUBJECT
    assert (mail.tls_version is None) == no_tls


def test_no_tls_against_a_server_that_requires_starttls_is_one_warning(
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = tls_server("starttls", certificates.good)
    sections = server.sections(receiver=RECEIVER)
    sections["smtp"]["no_tls"] = "true"
    scheduler = _scheduler(tmp_path, sections, batch_emails=False)
    try:
        _fail_once(scheduler)
    finally:
        scheduler.close(10)
    assert server.inbox.messages == []
    (warning,) = [r for r in caplog.records if r.name == "luigid.notify" and r.levelno >= logging.WARNING]
    assert warning.exc_info is None
    assert "STARTTLS" in warning.getMessage() and "\n" not in warning.getMessage()


def test_luigis_core_keys_select_implicit_tls(
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
) -> None:
    # luigi.cfg files from before [smtp] existed: [core] smtp_host, smtp_port, smtp_ssl
    server = tls_server("ssl", certificates.good)
    sections = {
        "core": {
            "error-email": "legacy@example.com",
            "smtp_host": "127.0.0.1",
            "smtp_port": str(server.port),
            "smtp_ssl": "true",
        },
        "email": {"force_send": "true"},
    }
    mail, _ = _first_mail(tmp_path, server, sections)
    assert mail.rcpt_tos == ["legacy@example.com"] and mail.tls_version is not None


# ------------------------------------------------------------------ rejected certificates

REJECTIONS = {
    # the certificate the server shows: (what OpenSSL says about it, what the operator can do)
    "self_signed": (
        "self-signed certificate",
        "point SSL_CERT_FILE at a CA bundle holding its issuer, or set [smtp] tls_verify = false",
    ),
    "wrong_host": (
        "IP address mismatch, certificate is not valid for '127.0.0.1'",
        "set [smtp] host to a name on its certificate, or set [smtp] tls_verify = false",
    ),
    "expired": ("certificate has expired", "set [smtp] tls_verify = false to send anyway"),
}


@pytest.mark.parametrize("batch_emails", [False, True], ids=["disable", "batch"])
@pytest.mark.parametrize("rejection", sorted(REJECTIONS))
@pytest.mark.parametrize("mode", MODES)
def test_rejected_certificate_is_one_clear_warning(
    mode: str,
    rejection: str,
    batch_emails: bool,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
    caplog: pytest.LogCaptureFixture,
    allow_error_logs: None,  # aiosmtpd logs the aborted handshake on its side; luigid must not
) -> None:
    reason, fix = REJECTIONS[rejection]
    server = tls_server(mode, getattr(certificates, rejection))
    scheduler = _scheduler(tmp_path, server.sections(receiver=RECEIVER), batch_emails=batch_emails)
    caplog.set_level(logging.INFO, logger="luigid")
    try:
        _fail_once(scheduler)
        if batch_emails:
            _send_batch(scheduler)
        notifier = scheduler.batch_notifier if batch_emails else scheduler.notifier
        outbox = notifier.mailer.outbox
        wait_for(lambda: outbox.failed_batches, timeout=15, what="the delivery to fail")

        # the scheduler answers on as before, the task stays disabled
        scheduler.add_task(worker="w1", task_id="Other_1", family="Other", status="PENDING")
        assert scheduler.get_work(worker="w1")["task_id"] == "Other_1"
        assert scheduler.ping(worker="w1") == {"rpc_messages": []}
        assert scheduler.task_list(DISABLED, "")["Ingest_1"]["status"] == DISABLED
    finally:
        scheduler.close(10)
    assert outbox.failed_batches == 1 and outbox.delivered_batches == 0
    assert server.inbox.messages == []

    mail_warnings = [r for r in _notify_warnings(caplog) if r.name == "luigid.notify"]
    assert len(mail_warnings) == 1, [r.getMessage() for r in mail_warnings]
    (warning,) = mail_warnings
    text = warning.getMessage()
    assert "\n" not in text and warning.exc_info is None
    where = f"127.0.0.1:{server.port}"
    assert text == f"could not send email: certificate of SMTP server {where} rejected: {reason} ({fix})"
    # nothing else luigid logged carries a traceback
    assert all(r.exc_info is None for r in caplog.records if r.name.startswith("luigid"))
    assert not [r for r in caplog.records if r.name.startswith("luigid") and r.levelno >= logging.ERROR]


# ------------------------------------------------------------------ the daemon, end to end


@pytest.mark.parametrize("mode", MODES)
def test_daemon_reports_a_rejected_certificate_once_and_keeps_scheduling(
    mode: str,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,  # the daemon inherits this trust (SSL_CERT_FILE, no SSL_CERT_DIR)
    tls_server: StartServer,
    allow_error_logs: None,  # the mail server's side of the aborted handshake
) -> None:
    server = tls_server(mode, certificates.self_signed)
    where = f"127.0.0.1:{server.port}"
    lines = ["[scheduler]", "retry_count = 1", "record_task_history = false"]
    for section, values in server.sections(receiver=RECEIVER).items():
        lines += [f"[{section}]", *(f"{key} = {value}" for key, value in values.items())]
    daemon = Luigid(tmp_path, "\n".join(lines) + "\n", config_name="mail-tls.cfg").start()
    try:
        call(
            daemon.port,
            "add_task",
            worker="w1",
            task_id="Ingest_1",
            family="Ingest",
            status=FAILED,
            expl="boom",
        )
        warned = lambda: [line for line in daemon.log.splitlines() if "could not send email" in line]  # noqa: E731
        (line,) = wait_for(warned, timeout=20, what="the mail warning")

        # scheduling goes on, quickly, while and after the mail fails
        call(daemon.port, "add_task", worker="w1", task_id="Other_1", family="Other", status="PENDING")
        assert call(daemon.port, "get_work", worker="w1")["task_id"] == "Other_1"
        listed = call(daemon.port, "task_list", status=DISABLED, upstream_status="")
        assert listed["Ingest_1"]["status"] == DISABLED
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log
    output = daemon.log
    assert warned() == [line]  # one line for the one disable mail, none more at shutdown
    reason, fix = REJECTIONS["self_signed"]
    assert line.endswith(
        f"could not send email: certificate of SMTP server {where} rejected: {reason} ({fix})"
    )
    assert "Traceback" not in output, output
    assert server.inbox.messages == []
