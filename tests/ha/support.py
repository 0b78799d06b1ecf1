"""Clusters of real luigid processes sharing one PostgreSQL schema, and what tests ask them."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests

from tests.support.daemon import Luigid, stop_all
from tests.support.wait import wait_for

PG = "postgresql://postgres@127.0.0.1:5432/test"


def pg_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(PG, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return str(exc)


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A schema of its own for one test (tables, lock and channel are named after it)."""
    name = f"ha_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        if not os.environ.get("LUIGID_HA_KEEP_SCHEMA"):  # kept to look at after a failure
            with psycopg.connect(PG, autocommit=True) as conn:
                terminate(conn, name)
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def dsn(schema: str, node: str) -> str:
    # application_name tells this test's sessions apart from everyone else's on the server
    return f"{PG}?options=-csearch_path%3D{schema}&application_name={schema}-{node}"


def terminate(conn: psycopg.Connection[Any], schema: str, node: str = "") -> int:
    """End this schema's sessions (of one node, or all): PostgreSQL cut them off."""
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
        (f"{schema}-{node}%",),
    ).fetchall()
    return len(rows)


def terminate_sessions(schema: str, node: str = "") -> int:
    with psycopg.connect(PG, autocommit=True) as conn:
        return terminate(conn, schema, node)


def node_config(schema: str, name: str, lease: float, extra: str = "", snapshots: float = 2.0) -> str:
    return (
        "[ha]\n"
        f"db_connection = {dsn(schema, name).replace('%', '%%')}\n"
        f"node_name = {name}\n"
        f"lease_timeout = {lease:g}\n"
        "[scheduler]\n"
        "journal_fsync = always\n"
        f"state_snapshot_interval = {snapshots:g}\n"
        "retry_delay = 5\n"
        f"{extra}"
    )


class Cluster:
    """``n`` luigid nodes on one schema, each in its own folder with its own port."""

    def __init__(
        self,
        workdir: Path,
        schema: str,
        n: int = 2,
        lease: float = 3.0,
        extra: str = "",
        snapshots: float = 2.0,
    ) -> None:
        self.schema = schema
        self.lease = lease
        self.nodes = [
            Luigid(workdir / f"node{i}", node_config(schema, f"node{i}", lease, extra, snapshots))
            for i in range(n)
        ]

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        stop_all(*self.nodes)

    def running(self) -> list[Luigid]:
        return [node for node in self.nodes if node.running()]

    def leaders(self) -> list[Luigid]:
        return [node for node in self.running() if leader_status(node)[0] == 200]

    def wait_leader(self, timeout: float = 30.0, other_than: Luigid | None = None) -> Luigid:
        def single() -> Luigid | None:
            """The one leader, once every standby that answers knows it (standbys learn it
            within a tick: a call forwarded before that would find no leader)."""
            statuses = {node: leader_status(node) for node in self.running()}
            leaders = [node for node, (status, _) in statuses.items() if status == 200]
            if len(leaders) != 1 or leaders[0] is other_than:
                return None
            url = leaders[0].base.rstrip("/")
            known = all(body.get("leader_url") == url for status, body in statuses.values() if status == 503)
            return leaders[0] if known else None

        found = wait_for(single, timeout, "exactly one leader", interval=0.1)
        assert found is not None
        return found

    def standby(self, leader: Luigid) -> Luigid:
        return next(node for node in self.running() if node is not leader)


def leader_status(node: Luigid) -> tuple[int, dict[str, Any]]:
    try:
        answer = requests.get(node.base + "leader", timeout=5)
    except requests.RequestException:
        return 0, {}
    return answer.status_code, answer.json()


def rpc(node: Luigid, method: str, args: dict[str, Any], timeout: float = 30) -> requests.Response:
    return requests.post(node.base + f"api/{method}", data={"data": json.dumps(args)}, timeout=timeout)


def add_task(node: Luigid, task_id: str, status: str = "PENDING", worker: str = "w1") -> requests.Response:
    return rpc(node, "add_task", {"worker": worker, "task_id": task_id, "status": status, "runnable": True})


def tasks(node: Luigid) -> dict[str, str]:
    """Every task the node's API knows, with its status."""
    answer = rpc(node, "task_list", {"status": "", "upstream_status": "", "search": ""})
    answer.raise_for_status()
    return {task_id: task["status"] for task_id, task in answer.json()["response"].items()}


def wait_answers(node: Luigid, timeout: float = 30.0) -> dict[str, str]:
    """``tasks`` once the node answers them (a new leader may still be taking over)."""

    def attempt() -> tuple[dict[str, str]] | None:
        try:
            return (tasks(node),)
        except requests.RequestException:
            return None

    answered = wait_for(attempt, timeout, f"{node.base} to answer task_list", interval=0.1)
    assert answered is not None
    return answered[0]


def monotonic_since(start: float) -> float:
    return time.monotonic() - start
