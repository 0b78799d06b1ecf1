"""Fixtures for the browser tests: a real luigid process fed by real luigi workers, and a
headless Chromium page that fails the test if anything raises a JavaScript dialog or an
uncaught error."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.processes import chromium_browser, free_port, luigid_command, terminate, wait_for, watch_page

HERE = Path(__file__).parent
INDEX = "static/visualiser/index.html"
MUTATING = {
    "add_task",
    "add_worker",
    "disable_worker",
    "forgive_failures",
    "mark_as_done",
    "pause",
    "re_enable_task",
    "send_scheduler_message",
    "set_worker_processes",
    "unpause",
    "update_resource",
}

pytestmark = pytest.mark.browser


@dataclass
class Luigid:
    """A luigid process on a free loopback port with its own state file and config."""

    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, fragment: str = "") -> str:
        return self.base + INDEX + (f"#{fragment}" if fragment else "")

    def call(self, method: str, **args: Any) -> Any:
        data = {"data": json.dumps(args)}
        url = f"{self.base}api/{method}"
        resp = (
            requests.post(url, data=data, timeout=10)
            if method in MUTATING
            else requests.get(url, params=data, timeout=10)
        )
        resp.raise_for_status()
        return resp.json()["response"]

    def statuses(self) -> dict[str, str]:
        return {tid: t["status"] for tid, t in self.call("task_list", limit=False).items()}

    def task_id(self, prefix: str) -> str:
        ids = [tid for tid in self.statuses() if tid.startswith(prefix)]
        assert len(ids) == 1, (prefix, ids)
        return ids[0]

    def run_pipeline(self) -> subprocess.Popen[bytes]:
        """Start pipeline.py in a luigi worker process; it runs until stop() is called."""
        log = open(self.workdir / "pipeline.log", "wb")  # noqa: SIM115 (lives as long as the worker)
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "pipeline.py"), str(self.port), str(self.workdir / "stop")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        self.children.append(proc)
        return proc

    def stop(self) -> None:
        (self.workdir / "stop").touch()
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
            if child.poll() is None:
                child.kill()
                child.wait()
        terminate(self.proc)


def start_luigid(workdir: Path, config: str) -> Luigid:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "luigi.cfg"
    cfg.write_text(config)
    port = free_port()
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(cfg))
    log = open(workdir / "luigid.log", "wb")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(
        [
            *luigid_command(),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--state-path",
            str(workdir / "state.pickle"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        env=env,
    )
    server = Luigid(port, proc, workdir)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"luigid exited: {(workdir / 'luigid.log').read_text()}")
        try:
            return requests.get(server.base + "api/is_paused", timeout=2).ok
        except requests.ConnectionError:
            return False

    wait_for(up, what="luigid to answer")
    return server


BASE_CONFIG = """
[scheduler]
worker_disconnect_delay = 3600

[resources]
gpu = 2
db = 5
"""

XSS = "<img src=x onerror=alert(1)>"


def start_pipeline_server(workdir: Path) -> Luigid:
    """luigid with the pipeline's worker running (see pipeline.py) and settled."""
    server = start_luigid(workdir, BASE_CONFIG)
    try:
        server.run_pipeline()

        def settled() -> bool:
            st = {tid.split("_")[0]: s for tid, s in server.statuses().items()}
            return (
                st.get("LongRunning") == "RUNNING"
                and st.get("Fragile") == "DISABLED"
                and st.get("Explode") == "FAILED"
                and st.get("Clean") == "DONE"
            )

        wait_for(settled, timeout=60, what="the pipeline to settle")
        # The worker is now inside LongRunning; the two Broken tasks failed before it.
        wait_for(
            lambda: [t for t, s in server.statuses().items() if t.startswith("Broken") and s == "FAILED"],
            what="Broken tasks to fail",
        )
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Per module, not per session: Playwright's sync API keeps an asyncio loop marked as
    # running while it lives, which would break Tornado test cases run after tests/ui.
    yield from chromium_browser()


class PageProbe:
    """Everything a page did that a test should fail on."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []


@pytest.fixture
def probe() -> PageProbe:
    return PageProbe()


@pytest.fixture
def page(browser: Any, probe: PageProbe) -> Iterator[Any]:
    # The page's own Content-Security-Policy would stop Playwright's string predicates; it is
    # bypassed so the tests also prove the rendering is safe without that second line of defence.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    watch_page(pg, probe.dialogs, probe.errors)
    pg.on("request", lambda req: probe.requests.append(req.url))
    yield pg
    context.close()
    assert probe.dialogs == [], f"the page raised JavaScript dialogs: {probe.dialogs}"
    assert probe.errors == [], f"uncaught errors in the page: {probe.errors}"


def open_ui(page: Any, server: Luigid, fragment: str = "") -> None:
    page.goto(server.url(fragment))
    page.wait_for_selector("body[data-loaded=true]")


def settle(page: Any) -> None:
    """Wait until no refresh is in flight, so what the page shows is its last answer."""
    page.wait_for_selector("body[data-refreshing=false]", state="attached")


def refresh_ui(page: Any) -> None:
    """Ask the page to refresh now and wait until that refresh has landed.

    An earlier refresh still in flight would bump the generation too, so wait it out first.
    """
    settle(page)
    before = page.get_attribute("#last-refresh", "data-generation") or "0"
    page.click("#refresh-now")
    page.wait_for_function(
        "(n) => Number(document.querySelector('#last-refresh').dataset.generation) > n", arg=int(before)
    )
    settle(page)
