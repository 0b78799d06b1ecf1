"""The built-in state path (/var/lib/luigi-server) is root's: a plain user's ``luigid`` starts
anyway, says where it keeps state instead, and keeps it there. Runs luigid as ``nobody``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Luigid

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to run as nobody"
)


NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def home() -> Iterator[Path]:
    """A home folder nobody can use (pytest's own temp tree is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="luigid-nobody-"))
    os.chmod(base, 0o777)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_plain_user_falls_back_to_a_per_user_state_file(home: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_STATE_HOME": str(home / "state")}
    daemon = Luigid(home, prefix=NOBODY, env=env, inherit_env=False, default_state_path=True)
    daemon.start(wait=False)
    try:
        probe = subprocess.run([*NOBODY, "test", "-w", "/var/lib"], check=False)
        if probe.returncode == 0:
            pytest.skip("nobody can write /var/lib here: the default path is usable")
        daemon.wait_ready(timeout=30)
        body = "data=" + urllib.parse.quote('{"worker": "w", "task_id": "A()", "family": "A"}')
        urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/api/add_task", data=body.encode(), timeout=10)
    finally:
        returncode = daemon.stop(timeout=30)
    stderr = daemon.log
    fallback = home / "state" / "luigid" / "state.pickle"
    assert returncode == 0, stderr
    assert "/var/lib/luigi-server/state.pickle is not writable" in stderr.replace("Default state path ", "")
    assert str(fallback) in stderr
    assert fallback.exists() and fallback.stat().st_size > 0
