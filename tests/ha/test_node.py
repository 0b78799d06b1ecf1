"""Two real luigid nodes on one PostgreSQL schema: one leads, the other forwards to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import requests

from tests.auth.test_auth import auth_section, basic
from tests.ha.support import Cluster, add_task, leader_status, rpc, tasks
from tests.support.daemon import Luigid


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


def test_with_authentication_leader_is_open_and_credentials_are_forwarded(
    cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    nodes = cluster(extra=auth_section(str(tmp_path))).start()
    leader = nodes.wait_leader()  # /leader needs no credentials
    standby = nodes.standby(leader)
    assert leader_status(standby)[0] == 503
    args = {"data": json.dumps({"worker": "w1", "task_id": "Authed", "status": "PENDING"})}
    refused = requests.post(standby.base + "api/add_task", data=args, timeout=10)
    assert refused.status_code == 401
    worker = requests.post(standby.base + "api/add_task", data=args, headers=basic("wes"), timeout=10)
    assert worker.status_code == 200
    viewer = requests.post(standby.base + "api/add_task", data=args, headers=basic("vic"), timeout=10)
    assert viewer.status_code == 403
    listed = rpc_as(leader, "task_list", {"status": "", "upstream_status": "", "search": ""}, basic("vic"))
    assert list(listed) == ["Authed"]


def rpc_as(node: Luigid, method: str, args: dict[str, str], headers: dict[str, str]) -> dict[str, object]:
    answer = requests.post(
        node.base + f"api/{method}", data={"data": json.dumps(args)}, headers=headers, timeout=10
    )
    answer.raise_for_status()
    return dict(answer.json()["response"])
