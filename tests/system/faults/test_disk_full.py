"""A full disk under a real daemon (issue 16): its state file and change log on a real 2 MB
tmpfs that a filler file takes over while workers keep adding tasks.

Before issue 16, 20,000 add_task calls on such a disk were all answered 200 and 4,789 of
them were missing after a restart, and the shutdown save ended in a traceback.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import Luigid, stop_all, wait_for
from tests.support.tmpfs import fill, small_tmpfs

pytestmark = pytest.mark.slow

CONFIG = "[scheduler]\nstate_snapshot_interval = 1\nmetrics_collector = prometheus\n"
#: a luigi-like task with a parameter big enough that a few hundred fill what the filler leaves
PARAM = "p" * 1500


def add_task(daemon: Luigid, n: int) -> requests.Response:
    data = {
        "task_id": f"Fill_{n}",
        "status": "PENDING",
        "worker": "filler",
        "family": "Fill",
        "params": {"n": str(n), "blob": PARAM},
        "runnable": True,
    }
    return requests.post(f"{daemon.base}api/add_task", data={"data": json.dumps(data)}, timeout=30)


def task_ids(daemon: Luigid) -> set[str]:
    reply = requests.get(
        f"{daemon.base}api/task_list", params={"data": json.dumps({"status": "PENDING"})}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    return set(reply.json()["response"])


def metric(daemon: Luigid, name: str) -> float:
    text = requests.get(f"{daemon.base}metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "2m") as folder:
        yield folder


@pytest.fixture
def daemon(tmp_path: Path, disk: Path) -> Iterator[Luigid]:
    luigid = Luigid(tmp_path / "run", CONFIG, state_path=disk / "state.pickle")
    yield luigid
    stop_all(luigid)


def fill_until_refused(daemon: Luigid, disk: Path) -> tuple[set[str], list[requests.Response]]:
    """Eight clients add tasks on a nearly full disk until a dozen calls are refused:
    (the tasks acknowledged, the refusals)."""
    fill(disk, leave=256 * 1024)
    acknowledged: set[str] = set()
    refused: list[requests.Response] = []
    with ThreadPoolExecutor(8) as pool:
        for start in range(0, 5000, 8):
            numbers = range(start, start + 8)
            for n, reply in zip(numbers, pool.map(lambda n: add_task(daemon, n), numbers), strict=True):
                if reply.status_code == 200:
                    acknowledged.add(f"Fill_{n}")
                else:
                    assert reply.status_code == 503, reply.text
                    refused.append(reply)
            if len(refused) >= 12:
                break
    assert refused, "the disk never filled up"
    return acknowledged, refused


def test_a_full_disk_refuses_changes_keeps_reads_and_loses_nothing_acknowledged(
    daemon: Luigid, disk: Path
) -> None:
    daemon.start()
    acknowledged, refused = fill_until_refused(daemon, disk)
    error = refused[0].json()["error"]
    assert "add_task" in error and "No space left on device" in error
    # reads and the UI go on
    assert acknowledged <= task_ids(daemon)
    assert requests.get(daemon.base, timeout=10).status_code == 200
    assert (
        requests.get(f"{daemon.base}api/ping", params={"data": '{"worker": "w"}'}, timeout=10).status_code
        == 503
    )
    assert metric(daemon, "luigid_writes_refused") == 1
    assert metric(daemon, "luigid_refused_writes_total") >= len(refused)
    # no snapshot temporary is left holding space
    wait_for(lambda: not list(disk.glob(".state.pickle.*.tmp")), 10, "snapshot temporaries to be removed")

    (disk / "filler").unlink()
    wait_for(lambda: metric(daemon, "luigid_writes_refused") == 0, 10, "writes to resume by themselves")
    assert add_task(daemon, 90_000).status_code == 200
    acknowledged.add("Fill_90000")

    daemon.kill()
    log = daemon.log
    assert "Traceback" not in log
    # one warning for the whole episode (rate-limited), one when writes resumed
    assert log.count("could not write the change log") <= 2, log
    assert "can be written again" in log
    daemon.start()
    assert acknowledged <= task_ids(daemon)


def test_a_shutdown_that_cannot_save_says_so_in_one_line_and_exits_4(daemon: Luigid, disk: Path) -> None:
    daemon.start()
    acknowledged, _ = fill_until_refused(daemon, disk)
    # the next snapshot has room for nothing: the final save fails too
    fill(disk, leave=0, name="filler2")
    assert daemon.stop(signal.SIGTERM, strict=True) == 4
    log = daemon.log
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "could not save the state" in line]
    assert len(lines) == 1, log
    assert "No space left on device" in lines[0] and str(disk / "state.pickle") in lines[0]

    # what was acknowledged is in the old snapshot and the change log, read at the next start
    (disk / "filler").unlink()
    (disk / "filler2").unlink()
    daemon.start()
    assert acknowledged <= task_ids(daemon)


def test_luigis_client_is_told_why_its_call_was_refused(
    daemon: Luigid, disk: Path, luigi_fast_retries: None
) -> None:
    """luigi 3.8.1 logs each failed attempt without its exception, then raises an RPCError
    holding the last one: that is where a worker's log shows our message."""
    from luigi.rpc import RemoteScheduler, RPCError

    daemon.start()
    fill_until_refused(daemon, disk)
    client: Any = RemoteScheduler(daemon.base)  # its RPC methods are set on it at import
    with pytest.raises(RPCError) as raised:
        client.add_task(worker="w", task_id="Refused_1", status="PENDING", family="Refused")
    shown = str(raised.value.sub_exception)
    assert "503" in shown and "changes are refused" in shown and "No space left on device" in shown
