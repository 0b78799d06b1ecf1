"""Fixtures that run the REAL daemon process and REAL luigi workers as subprocesses (see harness.py)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import tail
from tests.system.e2e.harness import CMD_ENV, Daemon, DaemonCommand, Workspace, probe_version, short_tmpdir


@pytest.fixture(scope="session")
def luigid_command() -> DaemonCommand:
    override = os.environ.get(CMD_ENV, "").strip()
    if override:
        argv = shlex.split(override)
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        code, out = probe_version(argv)
        ours = code == 0 and "luigid" in out.lower()
        why = "" if ours else f"{CMD_ENV} runs a daemon whose --version does not name luigid (luigi's own?)"
        return DaemonCommand(argv, ours, why)
    script = Path(sys.executable).parent / "luigid"
    if not script.exists():
        pytest.fail(f"no luigid console script at {script}: install the project (pip install -e .)")
    code, out = probe_version([str(script)])
    if code != 0 or "luigid" not in out.lower():
        pytest.fail(
            f"{script} is not this project's luigid (`--version` gave exit {code}: {out.strip()[:200]!r}); "
            f"luigi's script may have won: `pip install --no-deps -e .`, or set {CMD_ENV}"
        )
    return DaemonCommand([str(script)], True)


@pytest.fixture
def luigid_server(
    request: pytest.FixtureRequest, luigid_command: DaemonCommand, tmp_path: Path
) -> Iterator[Callable[..., Daemon]]:
    """Factory: ``luigid_server(scheduler={...}, resources={...}, unix_socket=False)`` -> a running Daemon."""
    daemons: list[Daemon] = []
    request.node.luigid_daemons = daemons
    socket_dirs: list[Path] = []

    def start(
        scheduler: dict[str, Any] | None = None,
        resources: dict[str, int] | None = None,
        unix_socket: bool = False,
    ) -> Daemon:
        config: dict[str, dict[str, Any]] = {"scheduler": {"record_task_history": False, **(scheduler or {})}}
        if resources:
            config["resources"] = dict(resources)
        home = tmp_path / f"luigid{len(daemons)}"
        home.mkdir()
        unix_path = None
        if unix_socket:
            socket_dirs.append(short_tmpdir("luigid-e2e-"))
            unix_path = str(socket_dirs[-1] / "luigid.sock")
        daemon = Daemon(luigid_command, home, config, unix_path)
        daemons.append(daemon)
        daemon.start()
        return daemon

    yield start
    for daemon in daemons:
        if daemon.running():
            daemon.stop()
    for directory in socket_dirs:
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()


@pytest.fixture
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    root = tmp_path / "work"
    (root / "out").mkdir(parents=True)
    space = Workspace(root)
    request.node.luigi_workspace = space
    yield space
    for run in space.runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On failure, attach every daemon's stderr/log and every worker's output to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for index, daemon in enumerate(getattr(item, "luigid_daemons", [])):
        report.sections.append((f"luigid #{index} output", daemon.output()))
    space = getattr(item, "luigi_workspace", None)
    for index, run in enumerate(space.runs if space else []):
        report.sections.append((f"luigi worker #{index} output", tail(run.output())))
