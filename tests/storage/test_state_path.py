"""The built-in state path (/var/lib/luigi-server) is root's: a plain user's ``luigid`` starts
anyway, says where it keeps state instead, and keeps it there. Runs luigid as ``nobody``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to run as nobody"
)


def _luigid_script() -> str:
    return str(Path(sys.executable).with_name("luigid"))


def _as_nobody(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *args]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def _wait_ready(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"luigid exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/", method="HEAD"), timeout=2
            )
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("luigid did not answer")


@pytest.fixture
def home() -> Iterator[Path]:
    """A home folder nobody can use (pytest's own temp tree is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="luigid-nobody-"))
    os.chmod(base, 0o777)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_plain_user_falls_back_to_a_per_user_state_file(home):
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_STATE_HOME": str(home / "state")}
    port = free_port()
    proc = _as_nobody([_luigid_script(), "--port", str(port), "--address", "127.0.0.1"], env)
    try:
        probe = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "test", "-w", "/var/lib"],
            check=False,
        )
        if probe.returncode == 0:
            pytest.skip("nobody can write /var/lib here: the default path is usable")
        _wait_ready(port, proc)
        body = "data=" + urllib.request.quote('{"worker": "w", "task_id": "A()", "family": "A"}')
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/add_task", data=body.encode(), timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    fallback = home / "state" / "luigid" / "state.pickle"
    assert proc.returncode == 0, stderr
    assert "/var/lib/luigi-server/state.pickle is not writable" in stderr.replace("Default state path ", "")
    assert str(fallback) in stderr
    assert fallback.exists() and fallback.stat().st_size > 0
