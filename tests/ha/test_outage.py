"""PostgreSQL cutting luigid's sessions off under load: writes are refused a while, then
resume, and nothing acknowledged is lost (the server itself is shared: it is never restarted)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.ha.load import Writer
from tests.ha.support import Cluster, leader_status, tasks, terminate_sessions, wait_answers
from tests.ha.test_takeover import missing
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
