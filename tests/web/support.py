"""Shared by the HTTP-layer tests: an in-process luigid over a real loopback socket, and a
save-and-reload check of what hostile input left behind."""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

from tornado.testing import AsyncHTTPTestCase

from luigid.config import CorsConfig, LuigidConfig, SchedulerConfig
from luigid.runtime.server import app
from luigid.scheduler import Scheduler
from luigid.storage import statefile
from luigid.web.validation import MAX_HEADER_SIZE
from tests.support.invariants import check_invariants
from tests.support.portrait import portrait

#: Arguments luigi's methods read from **kwargs (their signatures do not name them).
KWARGS_ARGUMENTS = frozenset({("ping", "worker"), ("announce_scheduling_failure", "worker")})


def make_scheduler(
    sections: dict[str, dict[str, Any]] | None = None,
    cors: CorsConfig | None = None,
    resources: dict[str, int] | None = None,
    state_path: str = "/nonexistent/state.pickle",
    **scheduler: Any,
) -> Scheduler:
    config = LuigidConfig(
        scheduler=SchedulerConfig(state_path=state_path, **scheduler),
        cors=cors or CorsConfig(),
        sections=sections or {},
        resources=resources or {},
    )
    return Scheduler(config)


class LuigidCase(AsyncHTTPTestCase):
    """A real HTTP server on loopback around a fresh scheduler per test."""

    sections: dict[str, dict[str, Any]] | None = None
    cors: CorsConfig | None = None

    def get_app(self) -> Any:
        self.scheduler = make_scheduler(self.sections, self.cors, resources={"cpu": 2})
        return app(self.scheduler)

    def get_httpserver_options(self) -> dict[str, Any]:
        return {"max_header_size": MAX_HEADER_SIZE}  # as luigid.runtime.server.Server starts it

    def form(self, data: Any) -> bytes:
        return urllib.parse.urlencode({"data": json.dumps(data)}).encode()

    def post(self, method: str, data: Any = None, *, raw: bytes | None = None, **kw: Any) -> Any:
        body = raw if raw is not None else self.form(data if data is not None else {})
        return self.fetch(f"/api/{method}", method="POST", body=body, **kw)

    def get(self, method: str, data: Any = None, **kw: Any) -> Any:
        query = "" if data is None else "?" + urllib.parse.urlencode({"data": json.dumps(data)})
        return self.fetch(f"/api/{method}{query}", **kw)


def error_of(response: Any) -> str:
    """The message of a JSON error reply (fails when the reply is anything else)."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = json.loads(response.body)
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["error"]
    return str(body["error"])


def save_and_reload(sched: Scheduler, folder: str) -> Scheduler:
    """Save the state, load it into a fresh scheduler, and check they hold the same."""
    path = os.path.join(folder, "state.pickle")
    statefile.save_state(sched.state, path)
    again = make_scheduler(state_path=path)
    assert statefile.load_into(again.state, path)
    assert portrait(again) == portrait(sched)
    check_invariants(again)
    return again
