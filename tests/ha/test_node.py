"""Two real luigid nodes on one PostgreSQL schema: one leads, the other forwards to it."""

from __future__ import annotations

import json
from collections.abc import Callable

import requests

from tests.ha.support import Cluster, add_task, leader_status, rpc, tasks


def test_exactly_one_of_two_nodes_leads(cluster: Callable[..., Cluster]) -> None:
    nodes = cluster().start()
    leader = nodes.wait_leader()
    standby = nodes.standby(leader)
    status, body = leader_status(leader)
    assert status == 200
    assert body["leader"] is True and body["node"] in ("node0", "node1") and body["epoch"] >= 1
    status, body = leader_status(standby)
    assert status == 503
    assert body["leader"] is False and body["leader_url"] == leader.base.rstrip("/")
    # HEAD answers the same status, for load balancers' health checks
    assert requests.head(leader.base + "leader", timeout=5).status_code == 200
    assert requests.head(standby.base + "leader", timeout=5).status_code == 503


def test_calls_made_through_the_standby_land_on_the_leader(cluster: Callable[..., Cluster]) -> None:
    nodes = cluster().start()
    leader = nodes.wait_leader()
    standby = nodes.standby(leader)
    assert add_task(standby, "Through-Standby").json() == {"response": None}
    assert tasks(leader) == {"Through-Standby": "PENDING"}
    assert tasks(standby) == {"Through-Standby": "PENDING"}  # read through the standby too
    # get_work through the standby hands out the leader's task
    work = rpc(standby, "get_work", {"worker": "w1", "host": "h"}).json()["response"]
    assert work["task_id"] == "Through-Standby"


def test_bad_input_through_the_standby_gets_the_leaders_answer(cluster: Callable[..., Cluster]) -> None:
    nodes = cluster().start()
    standby = nodes.standby(nodes.wait_leader())
    answer = requests.post(standby.base + "api/add_task", data={"data": "{not json"}, timeout=10)
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]
    assert requests.post(standby.base + "api/no_such_method", timeout=10).status_code == 404


def test_a_forwarded_call_is_never_forwarded_again(cluster: Callable[..., Cluster]) -> None:
    nodes = cluster().start()
    standby = nodes.standby(nodes.wait_leader())
    answer = requests.post(
        standby.base + "api/ping",
        data={"data": json.dumps({"worker": "w"})},
        headers={"X-Luigid-Forwarded": "elsewhere"},
        timeout=10,
    )
    assert answer.status_code == 503
    assert "standby" in answer.json()["error"]
