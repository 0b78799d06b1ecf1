"""The luigid console script's own command line: help, version, and a clear port-in-use error.

Only this project's daemon has these (luigi's luigid has no --version and prints a traceback when
its port is taken), so they are skipped when LUIGID_E2E_CMD points at another daemon.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.system.e2e.harness import DaemonCommand

from .harness import STARTUP_TIMEOUT


@pytest.fixture
def our_luigid(luigid_command: DaemonCommand) -> list[str]:
    if not luigid_command.is_ours:
        pytest.skip(luigid_command.why_not_ours)
    return luigid_command.argv


def run_cli(argv: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=STARTUP_TIMEOUT)


def test_help_points_to_the_configuration_files(our_luigid: list[str]) -> None:
    result = run_cli(our_luigid, "--help")
    assert result.returncode == 0, result.stderr
    assert "luigi.cfg" in result.stdout
    assert "LUIGI_CONFIG_PATH" in result.stdout


def test_version_is_printed(our_luigid: list[str]) -> None:
    result = run_cli(our_luigid, "--version")
    assert result.returncode == 0, result.stderr
    assert re.search(r"luigid\D*\d+\.\d+", result.stdout + result.stderr)


def test_port_in_use_gives_one_clear_line(our_luigid: list[str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "logs").mkdir()
        result = run_cli(
            our_luigid,
            *("--port", str(port), "--address", "127.0.0.1"),
            *("--state-path", str(tmp_path / "state.pickle"), "--logdir", str(tmp_path / "logs")),
        )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert str(port) in lines[0]
    assert "in use" in lines[0].lower()
