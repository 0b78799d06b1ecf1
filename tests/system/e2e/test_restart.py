"""A daemon restarted mid-pipeline (SIGTERM, start again on the same state) lets the pipeline finish."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

from tests.support import wait_for
from tests.system.e2e.harness import Daemon, Workspace


def test_pipeline_survives_daemon_restart(luigid_server: Callable[..., Daemon], workspace: Workspace) -> None:
    daemon = luigid_server()
    worker = workspace.start(daemon, "Chain", "--n", "3", "--delay", "1.5")
    wait_for(
        lambda: any(f["event"] == "start" and f["task"] == "Chain(n=1)" for f in workspace.journal()),
        timeout=60,
        what="the second link of the chain to start running",
    )

    assert daemon.stop(signal.SIGTERM) == 0, "SIGTERM is a clean shutdown"
    assert daemon.state_path.exists(), "state is saved on shutdown"
    daemon.start()

    # The restarted daemon remembers what was already done before the restart.
    assert "0" in daemon.param_values("DONE", "Chain", "n")

    worker.expect(0)
    links = [f"Chain(n={n})" for n in range(4)]
    assert workspace.count("start") == Counter(links), "no link ran twice"
    assert workspace.count("end") == Counter(links)
    assert daemon.param_values("DONE", "Chain", "n") == ["0", "1", "2", "3"]
