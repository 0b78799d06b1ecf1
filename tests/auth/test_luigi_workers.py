"""Real luigi workers against a real luigid process with authentication on: the credentials
in the scheduler URL are all a worker needs; wrong ones and wrong roles fail clearly; bad
calls come back to luigi's client as an RPCError that says what was wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.auth.test_auth import PASSWORDS, auth_section
from tests.support import Luigid

HERE = Path(__file__).parent
WORKER_CONFIG = "[core]\nrpc_retry_attempts = 1\nrpc_retry_wait = 0\nautoload_range = false\n"


@pytest.fixture(scope="module")
def luigid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Luigid]:
    folder = tmp_path_factory.mktemp("auth-luigid")
    config = (
        auth_section(str(folder))
        + f"""
[scheduler]
record_task_history = true

[task_history]
db_connection = sqlite:///{folder}/history.db

[resources]
db = 1
"""
    )
    daemon = Luigid(folder / "daemon", config).start()
    yield daemon
    daemon.stop()


def run_pipeline(url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "worker.cfg"
    cfg.write_text(WORKER_CONFIG)
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(cfg))
    return subprocess.run(
        [sys.executable, str(HERE / "pipeline.py"), url, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=folder,
    )


def assert_pipeline_ran(done: subprocess.CompletedProcess[str], folder: Path) -> None:
    """The pipeline exited cleanly and every one of its tasks wrote its output."""
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in folder.glob("*.txt")) == ["left.txt", "raw.txt", "report.txt", "right.txt"]


def statuses(daemon: Luigid) -> dict[str, str]:
    reply = requests.post(
        daemon.base + "api/task_list", data={"data": "{}"}, auth=("vic", PASSWORDS["vic"]), timeout=10
    )
    reply.raise_for_status()
    return {task_id: task["status"] for task_id, task in reply.json()["response"].items()}


def test_worker_with_credentials_in_the_url_runs_the_pipeline(luigid: Luigid, tmp_path: Path) -> None:
    done = run_pipeline(luigid.url("wes", PASSWORDS["wes"]), tmp_path / "run")
    assert_pipeline_ran(done, tmp_path / "run")
    assert set(statuses(luigid).values()) == {"DONE"}
    assert len(statuses(luigid)) == 4


def test_wrong_password_fails_with_401(luigid: Luigid, tmp_path: Path) -> None:
    done = run_pipeline(luigid.url("wes", "not-the-password"), tmp_path / "run")
    assert done.returncode != 0
    assert "401" in done.stderr
    assert not list((tmp_path / "run").glob("*.txt"))


def test_viewer_credentials_cannot_schedule(luigid: Luigid, tmp_path: Path) -> None:
    done = run_pipeline(luigid.url("vic", PASSWORDS["vic"]), tmp_path / "run")
    assert done.returncode != 0
    assert "403" in done.stderr
    assert "has role viewer" in done.stderr  # the reason phrase luigi's error shows
    assert not list((tmp_path / "run").glob("*.txt"))


def test_luigi_client_shows_what_was_wrong(luigid: Luigid, luigi_fast_retries: Any) -> None:
    from luigi.rpc import RemoteScheduler, RPCError

    client: Any = RemoteScheduler(luigid.url("wes", PASSWORDS["wes"]))
    assert client.count_pending(worker="w")["n_pending_tasks"] == 0
    with pytest.raises(RPCError) as raised:
        client.add_task(worker="w", task_id="T", priority="urgent")
    detail = str(raised.value.sub_exception)
    assert "400 Client Error" in detail
    assert "add_task: 'priority' must be a finite number, got a string" in detail
    with pytest.raises(RPCError) as raised:
        client.add_task(worker="w", task_id="T" * 100_000)
    assert "'task_id' is 100000 characters long" in str(raised.value.sub_exception)


def test_history_pages_need_a_viewer(luigid: Luigid) -> None:
    for path in ("history", "tasklist"):
        assert requests.get(luigid.base + path, timeout=10).status_code == 401
        page = requests.get(luigid.base + path, auth=("vic", PASSWORDS["vic"]), timeout=10)
        assert page.status_code == 200, path
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_metrics_need_a_viewer(luigid: Luigid) -> None:
    assert requests.get(luigid.base + "metrics", timeout=10).status_code == 401
    assert (
        requests.get(luigid.base + "metrics", auth=("vic", PASSWORDS["vic"]), timeout=10).status_code == 200
    )


def test_no_open_access_warning_with_auth_on(luigid: Luigid) -> None:
    assert "Authentication is off" not in luigid.log


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("[auth]\nenabled = true\n", "[auth] enabled: authentication needs [auth] users_file"),
        (
            "[auth]\nenabled = true\nusers_file = /nonexistent/users\n",
            "cannot read users file /nonexistent/users",
        ),
        ("[auth]\nenabeld = true\n", "[auth] enabeld: unknown key"),
    ],
)
def test_bad_auth_config_stops_luigid_with_one_line(tmp_path: Path, config: str, problem: str) -> None:
    daemon = Luigid(tmp_path, config, port=0).start(wait=False)
    assert daemon.wait(timeout=30) != 0
    output = (tmp_path / "luigid.log").read_text()
    assert problem in output
    assert "Traceback" not in output
