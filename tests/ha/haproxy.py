"""A real HAProxy (Debian's) running docs/ha/haproxy.cfg, pointed at a test cluster."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import requests

from tests.support.daemon import Luigid, free_port
from tests.support.wait import wait_for

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "ha" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class HAProxy:
    def __init__(self, workdir: Path, nodes: list[Luigid]) -> None:
        self.port = free_port()
        text = CONFIG.read_text().replace("bind *:8082", f"bind 127.0.0.1:{self.port}")
        for address, node in zip(("10.0.0.11:8082", "10.0.0.12:8082"), nodes[:2], strict=True):
            text = text.replace(address, f"127.0.0.1:{node.port}")
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(text)
        self.log = workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> HAProxy:
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config)], stdout=log, stderr=log)
        wait_for(self._answers_leader, 30, "HAProxy to reach the leader")
        return self

    def _answers_leader(self) -> bool:
        try:
            return requests.get(self.base + "leader", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
