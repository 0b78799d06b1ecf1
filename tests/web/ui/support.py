"""For the browser tests: a real luigid process fed by real luigi workers, and the moves a
test makes on the page."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.support import Luigid, wait_for
from tests.support.daemon import STOP_TIMEOUT

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


class UiServer(Luigid):
    """A luigid process whose tasks come from pipeline.py's worker (see run_pipeline)."""

    def __init__(self, workdir: Path, config: str) -> None:
        super().__init__(workdir, config)
        self.children: list[subprocess.Popen[bytes]] = []

    def page_url(self, fragment: str = "") -> str:
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

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT, strict: bool = False) -> int:
        (self.workdir / "stop").touch()
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
            if child.poll() is None:
                child.kill()
                child.wait()
        return super().stop(sig, timeout, strict)


def start_luigid(workdir: Path, config: str) -> UiServer:
    return UiServer(workdir, config).start()


BASE_CONFIG = """
[scheduler]
worker_disconnect_delay = 3600

[resources]
gpu = 2
db = 5
"""

XSS = "<img src=x onerror=alert(1)>"


def start_pipeline_server(workdir: Path) -> UiServer:
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


def open_ui(page: Any, server: UiServer, fragment: str = "") -> None:
    page.goto(server.page_url(fragment))
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
