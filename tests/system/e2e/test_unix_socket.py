"""A daemon listening on a Unix socket serves luigi workers through an http+unix:// URL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from tests.system.e2e.harness import Daemon, Workspace


def test_worker_over_unix_socket(luigid_server: Callable[..., Daemon], workspace: Workspace) -> None:
    daemon = luigid_server(unix_socket=True)
    workspace.run(daemon, "Node", "--shape", "diamond", "--node", "top")

    nodes = ("top", "left", "right", "base")
    assert workspace.count("end") == Counter(f"Node(shape=diamond, node={n})" for n in nodes)
    assert daemon.param_values("DONE", "Node", "node") == ["base", "left", "right", "top"]
