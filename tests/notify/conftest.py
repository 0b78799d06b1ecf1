"""Fixtures for the notification tests: SMTP servers on loopback and a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult

from tests.notify.smtp import Inbox, SilentServer, SmtpServer, start_smtp


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    controller, inbox = start_smtp()
    yield SmtpServer(inbox, controller.port)
    controller.stop()


@pytest.fixture
def smtp_server_with_login() -> Iterator[SmtpServer]:
    holder: dict[str, Inbox] = {}

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == (b"scheduler", b"s3cret")
        if ok:
            holder["inbox"].logins.append((auth_data.login.decode(), mechanism))
        return AuthResult(success=ok)

    controller, inbox = start_smtp(authenticator=authenticate, auth_require_tls=False)
    holder["inbox"] = inbox
    yield SmtpServer(inbox, controller.port)
    controller.stop()


@pytest.fixture
def dead_port() -> int:
    """A loopback port with nothing listening on it."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.hang_up()
