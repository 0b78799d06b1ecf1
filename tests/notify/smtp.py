"""A real SMTP server (aiosmtpd) on loopback for the notification tests, and a server that never answers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    #: the TLS version the mail came over (SMTPS or after STARTTLS), None for plain text
    tls_version: str | None = None

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


class Inbox:
    """aiosmtpd handler: keeps every accepted message and lets tests wait for them."""

    def __init__(self) -> None:
        self.messages: list[Delivered] = []
        self.logins: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert server.transport is not None and envelope.original_content is not None
        assert envelope.mail_from is not None
        tls = server.transport.get_extra_info("ssl_object")
        # wire format has CRLF line ends; read it as a mail client would
        raw = envelope.original_content.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        delivered = Delivered(
            envelope.mail_from, list(envelope.rcpt_tos), parsed, tls.version() if tls else None
        )
        with self._changed:
            self.messages.append(delivered)
            self._changed.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivered]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, timeout)
            assert len(self.messages) >= count, f"expected {count} messages, got {len(self.messages)}"
            return list(self.messages)

    def to(self, address: str) -> list[Delivered]:
        return [m for m in self.messages if address in m.rcpt_tos]


class LoopbackController(Controller):
    """aiosmtpd's Controller bound to an ephemeral port (it otherwise needs the port up front)."""

    def _trigger_server(self) -> None:
        self.port = cast(asyncio.Server, self.server).sockets[0].getsockname()[1]
        return super()._trigger_server()


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int
    #: more ``[smtp]`` keys its clients need (``ssl = true`` for an SMTPS server)
    smtp_options: dict[str, str] = field(default_factory=dict)

    def sections(self, **email_options: str) -> dict[str, dict[str, str]]:
        """Config sections pointing at this server; ``force_send`` so a terminal run still sends."""
        return {
            "smtp": {"host": "127.0.0.1", "port": str(self.port), "timeout": "10", **self.smtp_options},
            "email": {"force_send": "true", "sender": "luigid@example.com", **email_options},
        }


def start_smtp(**smtp_options: Any) -> tuple[LoopbackController, Inbox]:
    """A server on an ephemeral loopback port; ``smtp_options`` go to aiosmtpd's ``SMTP``
    (``ssl_context`` for SMTPS, ``tls_context``/``require_starttls`` for STARTTLS, an authenticator)."""
    inbox = Inbox()
    controller = LoopbackController(inbox, hostname="127.0.0.1", port=0, **smtp_options)
    controller.start()
    return controller, inbox


class SilentServer:
    """Accepts SMTP connections and never answers: what a hung mail server looks like."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        #: set once a client has connected (and now waits for a greeting that never comes)
        self.connected = threading.Event()
        self._closing = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        self.listener.settimeout(0.2)
        while not self._closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self._held.append(conn)
            self.connected.set()

    def hang_up(self) -> None:
        """Drop every held connection and stop listening (later connects are refused)."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.listener.close()
