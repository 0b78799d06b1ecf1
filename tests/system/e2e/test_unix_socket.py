"""A daemon listening on a Unix socket serves luigi workers through an http+unix:// URL."""

from __future__ import annotations

from collections import Counter


def test_worker_over_unix_socket(luigid_server, workspace):
    daemon = luigid_server(unix_socket=True)
    workspace.run(daemon, "Node", "--shape", "diamond", "--node", "top")

    nodes = ("top", "left", "right", "base")
    assert workspace.count("end") == Counter(f"Node(shape=diamond, node={n})" for n in nodes)
    assert daemon.param_values("DONE", "Node", "node") == ["base", "left", "right", "top"]
