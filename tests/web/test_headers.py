"""Every response carries the browser-safety headers (issue 7, section 3), authentication
on or off; static files are revalidated so an upgrade is never half-loaded."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import tornado.web

from luigid.auth import Guard, open_access_warning
from luigid.auth.config import AuthConfig
from luigid.web.base import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from tests.web.support import LuigidCase, make_scheduler


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_security_headers_pass_tornados_own_check() -> None:
    # BaseHandler writes them without set_header's check of every value: it would pass
    handler = tornado.web.RequestHandler.__new__(tornado.web.RequestHandler)
    for value in SECURITY_HEADERS.values():
        assert handler._convert_header_value(value) == value


def test_policy_allows_no_inline_script_and_no_framing() -> None:
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


class TestHeaders(LuigidCase):
    def assert_safe(self, response: Any) -> None:
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"

    def test_on_every_kind_of_response(self) -> None:
        for response in (
            self.fetch("/static/visualiser/index.html"),
            self.fetch("/static/visualiser/js/app.js"),
            self.fetch("/static/visualiser/no-such-file.js"),
            self.post("task_list", {}),
            self.post("task_list", raw=b"data=%7B"),
            self.fetch("/api/nope"),
            self.fetch("/nowhere"),
            self.fetch("/", follow_redirects=False),
            self.fetch("/", method="HEAD"),
            self.fetch("/metrics"),
        ):
            self.assert_safe(response)

    def test_static_files_are_revalidated(self) -> None:
        first = self.fetch("/static/visualiser/js/app.js?v=1")
        assert first.code == 200
        assert first.headers["Cache-Control"] == "no-cache"
        assert "Expires" not in first.headers
        again = self.fetch("/static/visualiser/js/app.js", headers={"If-None-Match": first.headers["Etag"]})
        assert again.code == 304
        assert first.headers["Content-Type"].startswith(("application/javascript", "text/javascript"))


def test_open_access_warning_only_when_it_applies() -> None:
    open_guard = Guard()
    for address in (None, "", "0.0.0.0", "::"):
        warning = open_access_warning(open_guard, address, None)
        assert warning is not None and "Authentication is off" in warning
    assert open_access_warning(open_guard, "127.0.0.1", None) is None
    assert open_access_warning(open_guard, None, "/run/luigid.sock") is None


def test_open_access_warning_not_given_when_auth_is_on(tmp_path: Any) -> None:
    users = tmp_path / "users"
    users.write_text("")
    guard = Guard(AuthConfig(enabled=True, users_file=str(users)))
    assert open_access_warning(guard, None, None) is None


def test_server_logs_the_warning_once_at_start(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    """Started as for all interfaces (the socket itself is bound to loopback: tests stay local)."""
    from luigid.runtime import server as server_module

    def loopback(port: int, address: str | None, unix_socket: str | None) -> list[socket.socket]:
        assert address is None
        import tornado.netutil

        return tornado.netutil.bind_sockets(0, "127.0.0.1")

    monkeypatch.setattr(server_module, "_bind", loopback)
    scheduler = make_scheduler()
    server = server_module.Server(scheduler, api_port=0, address=None)
    with caplog.at_level(logging.WARNING, logger="luigi.server"):
        server.startup()
    try:
        warnings = [r.getMessage() for r in caplog.records if "Authentication is off" in r.getMessage()]
        assert len(warnings) == 1
        assert "listens on all interfaces" in warnings[0]
    finally:
        assert server._http is not None
        server._http.stop()
        for sock in server.sockets:
            sock.close()
