"""PostgreSQL cutting luigid's sessions off, unreachable, or restarted, under load: writes are
refused a while, then resume, and nothing acknowledged is lost. The shared server at 5432 is never
restarted (other sessions use it): the restart test runs a server of its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.ha.load import Writer
from tests.ha.private_pg import PrivatePostgres
from tests.ha.support import (
    Cluster,
    add_task,
    leader_status,
    node_config,
    tasks,
    terminate_sessions,
    wait_answers,
)
from tests.ha.tcp_proxy import Relay
from tests.ha.test_takeover import missing
from tests.support.daemon import Luigid, stop_all
from tests.support.wait import wait_for


@pytest.mark.timeout(180)
@pytest.mark.parametrize("n_nodes", [1, 2])
def test_sessions_terminated_under_load(cluster: Callable[..., Cluster], n_nodes: int) -> None:
    nodes = cluster(n=n_nodes, lease=3.0).start()
    nodes.wait_leader()
    writer = Writer(nodes.nodes, pause=0.005)
    writer.start()
    wait_for(lambda: len(writer.acknowledged) >= 100, 60, "100 acknowledged changes")
    first_cut = time.monotonic()
    for _ in range(3):
        assert terminate_sessions(nodes.schema) > 0
        time.sleep(1.0)
    last_cut = time.monotonic()
    # writes resume after the last cut
    wait_for(lambda: writer.acknowledged_after(last_cut + 0.5) >= 50, 60, "writes to resume")
    writer.stop()
    assert writer.refused_after(first_cut) > 0, writer.answers  # they were refused meanwhile
    assert set(writer.answers) <= {200, 503}, writer.answers
    leader = nodes.wait_leader()
    known = wait_answers(leader)
    assert missing(writer.acknowledged, known) == {}
    for node in nodes.nodes:  # every node, standby or leader, answers the same
        assert tasks(node) == known
    assert leader_status(leader)[1]["epoch"] >= 1


@pytest.mark.timeout(180)
def test_postgresql_unreachable_refuses_writes_keeps_reads_then_recovers(tmp_path: Path, schema: str) -> None:
    relay = Relay(("127.0.0.1", 5432))
    lease = 3.0
    config = node_config(schema, "alone", lease).replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    node = Luigid(tmp_path / "alone", config)
    try:
        node.start()
        wait_for(lambda: leader_status(node)[0] == 200, 30, "the node to lead")
        for n in range(10):
            assert add_task(node, f"Before{n}").status_code == 200
        relay.cut()
        cut = time.monotonic()
        refused = wait_for(lambda: _refused(add_task(node, "During")), 10, "a write to be refused")
        assert refused is not None and "PostgreSQL" in refused, refused
        # reads keep working, before and after the lease lapsed
        assert set(tasks(node)) >= {f"Before{n}" for n in range(10)}
        wait_for(lambda: leader_status(node)[0] == 503, lease + 5, "the node to step down")
        assert time.monotonic() - cut >= lease - 0.5  # it waited for its lease, not less
        assert set(tasks(node)) >= {f"Before{n}" for n in range(10)}
        assert requests.get(node.base + "static/visualiser/index.html", timeout=5).status_code == 200
        assert add_task(node, "Still-Down").status_code == 503
        relay.restore()
        wait_for(lambda: leader_status(node)[0] == 200, 30, "the node to lead again")
        wait_for(lambda: add_task(node, "After").status_code == 200, 10, "writes to resume")
        known = tasks(node)
        assert {f"Before{n}" for n in range(10)} | {"After"} <= set(known)
        assert "Still-Down" not in known
    finally:
        node.stop()
        relay.close()


def _refused(answer: requests.Response) -> str | None:
    return str(answer.json()["error"]) if answer.status_code == 503 else None


@pytest.mark.timeout(240)
def test_postgresql_restarted_under_load(tmp_path: Path) -> None:
    server = PrivatePostgres().start()
    try:
        config = f"[ha]\ndb_connection = {server.url}\nnode_name = n{{}}\nlease_timeout = 3\n"
        config += "[scheduler]\nstate_snapshot_interval = 2\nretry_delay = 5\n"
        nodes = [Luigid(tmp_path / f"n{i}", config.format(i)) for i in range(2)]
        try:
            for node in nodes:
                node.start()
            wait_for(lambda: sum(leader_status(n)[0] == 200 for n in nodes) == 1, 30, "a leader")
            writer = Writer(nodes, pause=0.005)
            writer.start()
            wait_for(lambda: len(writer.acknowledged) >= 100, 60, "100 acknowledged changes")
            restarted = time.monotonic()
            server.restart()
            wait_for(lambda: writer.acknowledged_after(time.monotonic() - 1) >= 20, 60, "writes to resume")
            writer.stop()
            assert writer.refused_after(restarted) > 0, writer.answers
            assert set(writer.answers) <= {200, 503}, writer.answers
            leader = wait_for(
                lambda: next((n for n in nodes if leader_status(n)[0] == 200), None), 30, "a leader"
            )
            assert leader is not None
            assert missing(writer.acknowledged, wait_answers(leader)) == {}
        finally:
            stop_all(*nodes)
    finally:
        server.close()
