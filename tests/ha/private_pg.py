"""A PostgreSQL server of the test's own (initdb in a temporary folder, its own port), which a
test may restart: the shared server at 5432 is never restarted, as other sessions use it."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.daemon import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else (shutil.which(name) or name)


class PrivatePostgres:
    def __init__(self) -> None:
        # not under pytest's tmp_path: as root, the server runs as the postgres user, which
        # may not enter root's folders
        self.root = Path(tempfile.mkdtemp(prefix="luigid-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self._as_postgres, *argv], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def _ctl(self, *argv: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, *argv)

    def start(self) -> PrivatePostgres:
        self._ctl("-w", "start")
        return self

    def restart(self) -> None:
        """As an operator's restart: sessions ended, the server back after a moment."""
        self._ctl("-w", "-m", "fast", "restart")

    def close(self) -> None:
        with contextlib.suppress(AssertionError):  # it was not running
            self._ctl("-w", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
