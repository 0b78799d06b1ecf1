"""E-mail over implicit TLS (``[smtp] ssl = true``) and STARTTLS, against a real aiosmtpd server.

A throwaway CA and server certificates are made at test time with ``cryptography``; the
client trusts that CA through ``SSL_CERT_FILE`` (read by ``ssl.create_default_context``, so
by luigid's SMTP client), which is also how an operator trusts a private mail relay. The
mail comes from a real ``Scheduler``: a task disabled for failures (immediate mail) and a
``batch_emails`` summary. A certificate the client must reject costs one warning line per
delivery, never a traceback, and the scheduler keeps answering.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import json
import logging
import os
import ssl
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from luigid.config import LuigidConfig, SchedulerConfig
from luigid.core.model import DISABLED, FAILED
from luigid.scheduler import Scheduler
from tests.processes import free_port, luigid_command, terminate, wait_for

MODES = ("ssl", "starttls")
DISABLE_SUBJECT = "Luigi Scheduler: DISABLED Ingest_1 due to excessive failures"
BATCH_SUBJECT = "Luigi: 1 failure, 1 disable in the last 60 minutes"


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


@dataclass
class Received:
    rcpt_tos: list[str]
    message: EmailMessage
    #: the TLS version the mail came over, None for plain text
    tls_version: str | None


@dataclass
class TlsInbox:
    """aiosmtpd handler keeping each message with how it was carried."""

    messages: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert server.transport is not None and envelope.original_content is not None
        tls = server.transport.get_extra_info("ssl_object")
        raw = envelope.original_content.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.changed:
            self.messages.append(Received(list(envelope.rcpt_tos), parsed, tls.version() if tls else None))
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.messages) >= count, timeout)
            assert len(self.messages) >= count, f"expected {count} messages, got {len(self.messages)}"
            return list(self.messages)


class _LoopbackController(Controller):
    """Controller on an ephemeral loopback port (it otherwise needs the port up front)."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class TlsServer:
    mode: str
    port: int
    inbox: TlsInbox

    def sections(self, receiver: str = "ops@example.com") -> dict[str, dict[str, str]]:
        """luigi.cfg sections for this server: ``ssl = true`` or the default STARTTLS path."""
        smtp = {"host": "127.0.0.1", "port": str(self.port), "timeout": "10"}
        smtp["ssl"] = "true" if self.mode == "ssl" else "false"
        return {
            "smtp": smtp,
            "email": {"receiver": receiver, "sender": "luigid@example.com", "force_send": "true"},
        }


class StartServer(Protocol):
    def __call__(self, mode: str, pair: KeyPair, require_starttls: bool = True) -> TlsServer: ...


@pytest.fixture
def tls_server() -> Iterator[StartServer]:
    """Factory: ``tls_server("ssl" | "starttls", key_pair)`` -> a running server presenting that certificate.

    ``ssl``: TLS from the first byte (SMTPS). ``starttls``: plain text until STARTTLS, which the
    server requires (unless told otherwise) before it accepts any mail, so a delivery proves the
    upgrade happened.
    """
    controllers: list[Controller] = []

    def start(mode: str, pair: KeyPair, require_starttls: bool = True) -> TlsServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        inbox = TlsInbox()
        options: dict[str, Any] = (
            {"ssl_context": context}
            if mode == "ssl"
            else {"tls_context": context, "require_starttls": require_starttls}
        )
        controller = _LoopbackController(inbox, hostname="127.0.0.1", port=0, **options)
        controller.start()
        controllers.append(controller)
        return TlsServer(mode, controller.port, inbox)

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


# ------------------------------------------------------------------ delivered over TLS


@pytest.mark.parametrize("mode", MODES)
def test_disable_email_arrives_over_tls(
    mode: str,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
) -> None:
    server = tls_server(mode, certificates.good)
    scheduler = _scheduler(tmp_path, server.sections(), batch_emails=False)
    try:
        _fail_once(scheduler)
        (mail,) = server.inbox.wait_for(1)
    finally:
        scheduler.close(10)
    assert mail.tls_version is not None and mail.tls_version.startswith("TLS")
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.message["Subject"] == DISABLE_SUBJECT
    assert "Ingest_1 failed 1 times" in mail.message.get_content()
    assert scheduler.notifier.mailer.outbox.failed_batches == 0


@pytest.mark.parametrize("mode", MODES)
def test_batch_email_arrives_over_tls(
    mode: str,
    tmp_path: Path,
    certificates: Certificates,
    trust_test_ca: Path,
    tls_server: StartServer,
) -> None:
    server = tls_server(mode, certificates.good)
    scheduler = _scheduler(tmp_path, server.sections(), batch_emails=True)
    try:
        _fail_once(scheduler)
        _send_batch(scheduler)
        (mail,) = server.inbox.wait_for(1)
    finally:
        scheduler.close(10)
    assert mail.tls_version is not None and mail.tls_version.startswith("TLS")
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.message["Subject"] == BATCH_SUBJECT
    body = mail.message.get_content()
    assert "- Ingest(date=2024-01-01) (1 failure, 1 disable)" in body and "ValueError: bad row 17" in body
    assert scheduler.batch_notifier.mailer.outbox.failed_batches == 0


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
    sections = server.sections()
    sections["smtp"]["tls_verify"] = "false"
    scheduler = _scheduler(tmp_path, sections, batch_emails=False)
    try:
        _fail_once(scheduler)
        (mail,) = server.inbox.wait_for(1)
    finally:
        scheduler.close(10)
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
    sections = server.sections()
    sections["smtp"]["no_tls"] = str(no_tls).lower()
    scheduler = _scheduler(tmp_path, sections, batch_emails=False)
    try:
        _fail_once(scheduler)
        (mail,) = server.inbox.wait_for(1)
    finally:
        scheduler.close(10)
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
    sections = server.sections()
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
    scheduler = _scheduler(tmp_path, sections, batch_emails=False)
    try:
        _fail_once(scheduler)
        (mail,) = server.inbox.wait_for(1)
    finally:
        scheduler.close(10)
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
    scheduler = _scheduler(tmp_path, server.sections(), batch_emails=batch_emails)
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


def _rpc(port: int, method: str, **arguments: Any) -> Any:
    body = urllib.parse.urlencode({"data": json.dumps(arguments)}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/{method}", data=body)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["response"]


def _answers(port: int) -> bool:
    try:
        _rpc(port, "ping", worker="probe")
        return True
    except OSError:
        return False


@pytest.mark.parametrize("mode", MODES)
def test_daemon_reports_a_rejected_certificate_once_and_keeps_scheduling(
    mode: str,
    tmp_path: Path,
    certificates: Certificates,
    tls_server: StartServer,
    allow_error_logs: None,  # the mail server's side of the aborted handshake
) -> None:
    server = tls_server(mode, certificates.self_signed)
    where = f"127.0.0.1:{server.port}"
    lines = ["[scheduler]", "retry_count = 1", "record_task_history = false"]
    for section, values in server.sections().items():
        lines += [f"[{section}]", *(f"{key} = {value}" for key, value in values.items())]
    (tmp_path / "mail-tls.cfg").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_CONFIG")}
    env.update(LUIGI_CONFIG_PATH=str(tmp_path / "mail-tls.cfg"), SSL_CERT_FILE=str(certificates.ca))
    env.pop("SSL_CERT_DIR", None)
    port = free_port()
    log = tmp_path / "luigid.log"
    argv = [*luigid_command(), "--port", str(port), "--address", "127.0.0.1"]
    argv += ["--state-path", str(tmp_path / "state.pickle")]
    with open(log, "wb") as sink:
        daemon = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: daemon.poll() is not None or _answers(port), timeout=30, what="luigid to answer")
        assert daemon.poll() is None, log.read_text()

        _rpc(port, "add_task", worker="w1", task_id="Ingest_1", family="Ingest", status=FAILED, expl="boom")
        warned = lambda: [line for line in log.read_text().splitlines() if "could not send email" in line]  # noqa: E731
        (line,) = wait_for(warned, timeout=20, what="the mail warning")

        # scheduling goes on, quickly, while and after the mail fails
        _rpc(port, "add_task", worker="w1", task_id="Other_1", family="Other", status="PENDING")
        assert _rpc(port, "get_work", worker="w1")["task_id"] == "Other_1"
        assert _rpc(port, "task_list", status=DISABLED, upstream_status="")["Ingest_1"]["status"] == DISABLED
    finally:
        terminate(daemon)
    assert daemon.returncode == 0, log.read_text()
    output = log.read_text()
    assert warned() == [line]  # one line for the one disable mail, none more at shutdown
    reason, fix = REJECTIONS["self_signed"]
    assert line.endswith(
        f"could not send email: certificate of SMTP server {where} rejected: {reason} ({fix})"
    )
    assert "Traceback" not in output, output
    assert server.inbox.messages == []
