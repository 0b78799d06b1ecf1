"""A leader killed or frozen: the standby takes over, with everything acknowledged before."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.ha.load import Writer
from tests.ha.support import PG, Cluster, add_task, leader_status, rpc, wait_answers
from tests.support.daemon import Luigid
from tests.support.wait import wait_for


def snapshot_seq(schema: str) -> int:
    """The last change the snapshot in PostgreSQL covers (-1: none yet)."""
    with psycopg.connect(PG, options=f"-csearch_path={schema}") as conn:
        row = conn.execute("SELECT seq FROM luigid_ha_snapshot").fetchone()
    return int(row[0]) if row else -1


def log_seqs(schema: str) -> list[int]:
    with psycopg.connect(PG, options=f"-csearch_path={schema}") as conn:
        return [int(r[0]) for r in conn.execute("SELECT seq FROM luigid_ha_log").fetchall()]


def missing(acknowledged: dict[str, str], known: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Acknowledged changes the node does not show: id -> (acknowledged status, shown status)."""
    return {
        task_id: (status, known.get(task_id))
        for task_id, status in acknowledged.items()
        if known.get(task_id) != status
    }


def test_kill_9_of_the_leader_loses_nothing_acknowledged(cluster: Callable[..., Cluster]) -> None:
    nodes = cluster(lease=3.0).start()
    leader = nodes.wait_leader()
    standby = nodes.standby(leader)
    # a worker that holds a running task across the failover
    add_task(leader, "Running-Across", worker="runner")
    assert rpc(leader, "get_work", {"worker": "runner", "host": "h"}).json()["response"]["task_id"] == (
        "Running-Across"
    )
    writer = Writer([leader, standby])
    writer.start()
    wait_for(lambda: len(writer.acknowledged) >= 150, 60, "150 acknowledged changes")
    leader.kill()
    killed = time.monotonic()
    new = nodes.wait_leader(timeout=15, other_than=leader)
    assert new is standby
    assert time.monotonic() - killed < 15
    wait_for(lambda: writer.acknowledged_after(time.monotonic() - 0.5) > 0, 30, "writes to resume")
    writer.stop()
    known = wait_answers(new)
    assert missing(writer.acknowledged, known) == {}
    assert known["Running-Across"] == "RUNNING"
    # every known worker counts as just seen: the runner is still there after the takeover
    workers = {w["name"] for w in rpc(new, "worker_list", {}).json()["response"]}
    assert "runner" in workers
    assert f"epoch {leader_status(new)[1]['epoch']}" in new.log


def test_a_graceful_stop_hands_over_at_once(cluster: Callable[..., Cluster]) -> None:
    nodes = cluster(lease=30.0).start()
    leader = nodes.wait_leader()
    standby = nodes.standby(leader)
    add_task(leader, "Before-Stop")
    leader.stop()
    stopped = time.monotonic()
    nodes.wait_leader(timeout=10, other_than=leader)  # far less than the 30 s lease: it resigned
    assert time.monotonic() - stopped < 10
    assert wait_answers(standby) == {"Before-Stop": "PENDING"}


def test_a_restarted_cluster_has_every_change(cluster: Callable[..., Cluster]) -> None:
    nodes = cluster(lease=3.0).start()
    leader = nodes.wait_leader()
    for n in range(20):
        assert add_task(leader, f"Kept{n}", "DONE" if n % 2 else "PENDING").status_code == 200
    # a snapshot (every 2 s) covers these, and trims the log it covers
    covered = wait_for(lambda: snapshot_seq(nodes.schema) >= 19, 30, "a snapshot covering the first 20")
    for n in range(20, 30):
        assert add_task(leader, f"Kept{n}", "DONE" if n % 2 else "PENDING").status_code == 200
    assert all(seq > covered for seq in log_seqs(nodes.schema))  # the covered part was trimmed
    nodes.stop()
    # the snapshot and the log after it: both halves are read back
    nodes.start()
    leader = nodes.wait_leader()
    known = wait_answers(leader)
    assert known == {f"Kept{n}": "DONE" if n % 2 else "PENDING" for n in range(30)}
    assert "loaded the snapshot of change" in leader.log


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_frozen_leader_is_replaced_and_steps_down_after_it_wakes(cluster: Callable[..., Cluster]) -> None:
    lease = 3.0
    nodes = cluster(lease=lease).start()
    old = nodes.wait_leader()
    standby = nodes.standby(old)
    assert add_task(old, "Before-Freeze").status_code == 200
    old.proc.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        # calls sent to the frozen node wait in its socket and are read when it wakes
        late: dict[str, int] = {}

        def call_frozen(n: int) -> None:
            try:
                late[f"Late{n}"] = add_task(old, f"Late{n}").status_code
            except Exception:
                late[f"Late{n}"] = 0

        callers = [threading.Thread(target=call_frozen, args=(n,)) for n in range(5)]
        for caller in callers:
            caller.start()
        new = nodes.wait_leader(timeout=lease + 10, other_than=old)
        assert new is standby
        assert time.monotonic() - frozen < lease + 10
        assert add_task(new, "After-Takeover").status_code == 200
    finally:
        old.proc.send_signal(signal.SIGCONT)
    woke = time.monotonic()
    wait_for(lambda: leader_status(old)[0] == 503, 10, "the old leader to step down")
    assert time.monotonic() - woke < 10
    for caller in callers:
        caller.join(60)
    # more calls at the old leader after it woke: forwarded to the new one, or refused
    for n in range(5, 10):
        late[f"Late{n}"] = add_task(old, f"Late{n}").status_code
    known = wait_answers(new)
    assert known["Before-Freeze"] == "PENDING" and known["After-Takeover"] == "PENDING"
    acknowledged = {task_id for task_id, code in late.items() if code == 200}
    # no split brain: whatever the old leader acknowledged is on the new leader
    assert acknowledged <= set(known), (late, known)
    assert {code for code in late.values()} <= {200, 503}, late
    assert "stops leading" in old.log
    assert len(nodes.leaders()) == 1


def test_a_single_node_upgraded_to_two_keeps_its_state(
    cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    single = Luigid(tmp_path / "single", "[scheduler]\nretry_delay = 5\n").start()
    for n in range(5):
        assert add_task(single, f"Single{n}", "DONE" if n % 2 else "PENDING").status_code == 200
    single.stop()  # a clean stop saves every change into the state file
    nodes = cluster(lease=3.0)
    nodes.nodes[0].state_path = single.state_path  # the upgraded node keeps its --state-path
    nodes.start()
    leader = nodes.wait_leader()
    expected = {f"Single{n}": "DONE" if n % 2 else "PENDING" for n in range(5)}
    assert wait_answers(leader) == expected
    assert "starts from this node's state file" in nodes.nodes[0].log
    # the second node has it too: it takes over with it
    leader.kill()
    new = nodes.wait_leader(timeout=15, other_than=leader)
    assert wait_answers(new) == expected


def test_a_new_leader_counts_every_known_worker_as_just_seen(cluster: Callable[..., Cluster]) -> None:
    """Workers that only waited for the failover are not timed out by the new leader's first prune."""
    nodes = cluster(lease=3.0, extra="worker_disconnect_delay = 3\n")
    nodes.start()
    leader = nodes.wait_leader()
    add_task(leader, "Held", worker="quiet")
    time.sleep(3.5)  # longer than worker_disconnect_delay since the worker was last heard of
    leader.kill()
    new = nodes.wait_leader(timeout=15, other_than=leader)
    # worker_list prunes first, as luigi's does: a worker last seen before the takeover stays
    workers = {w["name"] for w in rpc(new, "worker_list", {}).json()["response"]}
    assert "quiet" in workers
    # and it is timed out as usual once the delay passes again without a call
    wait_for(
        lambda: "quiet" not in {w["name"] for w in rpc(new, "worker_list", {}).json()["response"]},
        30,
        "the quiet worker to be timed out",
    )
