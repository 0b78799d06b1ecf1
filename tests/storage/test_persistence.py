"""The state file: round trips, older formats, luigi's files, damaged and malicious files,
and crash safety under kill -9 (the last ones through the real ``luigid`` command)."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from luigid.config import SchedulerConfig
from luigid.core.model import NO_EXTRAS, RetryPolicy, Task
from luigid.scheduler import Scheduler
from luigid.storage import codec, safe_pickle, statefile
from tests.support import free_port, wait_for
from tests.support.cli import CliLuigid, error_line, listening, run_luigid, saved_task_ids
from tests.support.daemon import START_TIMEOUT
from tests.support.portrait import known_task, plain, portrait

# ------------------------------------------------------------------------ helpers


def busy_scheduler(path: Path) -> Scheduler:
    """A state with every kind of thing a file must carry."""
    s = Scheduler(SchedulerConfig(state_path=str(path), retry_count=3))
    s.add_worker(worker="w1", info={"host": "alpha", "pid": 11})
    s.add_task(worker="w1", task_id="A_1", family="A", module="pipe", status="DONE", params={"x": "1"})
    s.add_task(
        worker="w1",
        task_id="B_1",
        family="B",
        deps=["A_1"],
        priority=7,
        params={"x": "1", "token": "t"},
        param_visibilities={"token": 1},
        resources={"db": 1},
    )
    s.add_task(worker="w2", task_id="B_1", family="B")
    s.add_task(worker="w1", task_id="C_1", family="C", status="FAILED", expl="boom")
    s.add_task(worker="w1", task_id="C_1", family="C", status="FAILED", expl="boom again")
    s.add_task_batcher(worker="w2", task_family="D", batched_args=["day"], max_batch_size=10)
    s.add_task(worker="w2", task_id="D_1", family="D", params={"day": "1"}, batchable=True)
    assert s.get_work(worker="w1", host="alpha")["task_id"] == "B_1"
    return s


def reload(path: Path, **config: Any) -> Scheduler:
    fresh = Scheduler(SchedulerConfig(state_path=str(path), **config))
    assert statefile.load_into(fresh.state, str(path))
    return fresh


# ---------------------------------------------------------------- format, in process


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    original = busy_scheduler(path)
    original.dump()
    again = reload(path)
    assert portrait(again) == portrait(original)
    c_task = known_task(again, "C_1")
    assert c_task.retry_policy == RetryPolicy(3, 999999999, 3600)
    assert len(c_task.failures) == 2
    # the indexes are rebuilt: the next failure disables, as it would have before the restart
    again.add_task(worker="w1", task_id="C_1", family="C", status="FAILED")
    assert known_task(again, "C_1").status == "DISABLED"


@pytest.mark.parametrize("layout", ["ours", "another"])
def test_only_tasks_with_extras_load_a_record_of_their_own(tmp_path: Path, layout: str) -> None:
    """Tasks whose rarely set fields all hold their defaults share ``NO_EXTRAS`` after a load
    as they did before it (issue 14, memory per task), through the fast row loader ("ours")
    and the field-by-field one for other layouts ("another"); the others keep their values."""
    path = tmp_path / "state.pickle"
    original = busy_scheduler(path)
    original.dump()
    if layout == "another":
        document = codec.read_document(path.read_bytes())
        document["version"] = 2
        document["task_fields"] = document["task_fields"][::-1]
        document["tasks"] = [row[::-1] for row in document["tasks"]]
        path.write_bytes(pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL))
    again = reload(path)
    assert portrait(again) == portrait(original)
    assert known_task(again, "A_1").extras is NO_EXTRAS
    assert known_task(again, "B_1").hidden_params == {"token": "t"}
    assert known_task(again, "C_1").expl == "boom again" and len(known_task(again, "C_1").failures) == 2
    assert known_task(again, "D_1").batchable is True
    assert NO_EXTRAS.batchable is False and NO_EXTRAS.hidden_params == {}  # type: ignore[attr-defined]


def test_file_carries_format_and_version(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    busy_scheduler(path).dump()
    document = codec.read_document(path.read_bytes())
    assert document["format"] == "luigid-state"
    assert document["version"] == codec.VERSION


def test_first_unversioned_luigid_file_still_loads(tmp_path: Path) -> None:
    """luigid 0.1 pickled the bare (tasks, workers, batchers) tuple."""
    path = tmp_path / "state.pickle"
    original = busy_scheduler(path)
    path.write_bytes(pickle.dumps(original.state.snapshot()))
    assert portrait(reload(path)) == portrait(original)


def test_version_1_file_still_loads(tmp_path: Path) -> None:
    """luigid's format 1 pickled the Task and Worker objects themselves."""
    path = tmp_path / "state.pickle"
    original = busy_scheduler(path)
    tasks, workers, batchers = original.state.snapshot()
    document = {"format": "luigid-state", "version": 1, "tasks": tasks, "workers": workers}
    document["batchers"] = batchers
    path.write_bytes(pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL))
    assert portrait(reload(path)) == portrait(original)


def test_file_stores_rows_of_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    busy_scheduler(path).dump()
    document = codec.read_document(path.read_bytes())
    assert document["task_fields"] == codec.TASK_FIELDS
    assert not set(codec.TASK_FIELDS) & Task.DERIVED
    assert all(type(row) is tuple and len(row) == len(codec.TASK_FIELDS) for row in document["tasks"])
    ids = {row[codec.TASK_FIELDS.index("id")] for row in document["tasks"]}
    assert ids == {"A_1", "B_1", "C_1", "D_1"}


def test_rows_of_another_layout_load_field_by_field(tmp_path: Path) -> None:
    """A file whose rows name their fields differently (another luigid version) still loads:
    known fields by name, missing ones with a new task's defaults."""
    path = tmp_path / "state.pickle"
    original = busy_scheduler(path)
    original.dump()
    document = codec.read_document(path.read_bytes())
    fields = list(reversed(document["task_fields"]))
    dropped = fields.index("owners")
    del fields[dropped]
    rows = [tuple(reversed(row)) for row in document["tasks"]]
    document["task_fields"] = tuple(fields)
    document["tasks"] = [row[:dropped] + row[dropped + 1 :] for row in rows]
    path.write_bytes(pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL))
    expected = portrait(original)
    for task in expected["tasks"].values():
        task["owners"] = None
    assert portrait(reload(path)) == expected


@pytest.mark.parametrize(
    "damage",
    ["short row", "unknown status", "deps not a set", "rows not a list", "id not a string"],
)
def test_malformed_rows_are_quarantined(tmp_path: Path, damage: str, allow_error_logs: None) -> None:
    path = tmp_path / "state.pickle"
    busy_scheduler(path).dump()
    document = codec.read_document(path.read_bytes())
    fields = codec.TASK_FIELDS
    row = list(document["tasks"][0])
    if damage == "short row":
        document["tasks"][0] = tuple(row[:-1])
    elif damage == "unknown status":
        row[fields.index("status")] = "SLEEPING"
        document["tasks"][0] = tuple(row)
    elif damage == "deps not a set":
        row[fields.index("deps")] = "A_1"
        document["tasks"][0] = tuple(row)
    elif damage == "rows not a list":
        document["tasks"] = {"A_1": tuple(row)}
    else:
        row[fields.index("id")] = 17
        document["tasks"][0] = tuple(row)
    payload = pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL)
    path.write_bytes(payload)
    scheduler = Scheduler(SchedulerConfig(state_path=str(path)))
    assert statefile.load_into(scheduler.state, str(path)) is False
    assert scheduler.state.count() == 0
    (aside,) = tmp_path.glob("state.pickle.corrupt-*")
    assert aside.read_bytes() == payload


def test_message_responses_stay_with_their_task_after_a_reload(tmp_path: Path) -> None:
    """Empty maps are shared between tasks in memory and so in the file; a response given
    to one task after a restart must not show up on another."""
    path = tmp_path / "state.pickle"
    busy_scheduler(path).dump()
    again = reload(path)
    again.add_scheduler_message_response(task_id="B_1", message_id="m1", response="yes")
    assert known_task(again, "C_1").scheduler_message_responses == {}
    assert again.get_scheduler_message_response(task_id="C_1", message_id="m1") == {"response": None}
    assert again.get_scheduler_message_response(task_id="B_1", message_id="m1") == {"response": "yes"}


def test_newer_format_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    payload = pickle.dumps({"format": "luigid-state", "version": codec.VERSION + 1, "tasks": {}})
    path.write_bytes(payload)
    result = run_luigid(tmp_path, "--port", str(free_port()), "--state-path", str(path))
    assert result.returncode == 3
    assert "newer luigid" in error_line(result.stderr)
    assert path.read_bytes() == payload
    assert not list(tmp_path.glob("state.pickle.corrupt-*"))


# ---------------------------------------------------------------------- luigi's files

LUIGI_WRITER = r"""
import json, sys
from luigi.scheduler import Scheduler

s = Scheduler(state_path=sys.argv[1], retry_count=3, disable_window=3600)
s.add_worker("w1", {"host": "alpha", "pid": 11})
s.add_task(worker="w1", task_id="A_1", family="A", module="pipe", status="DONE", params={"x": "1"},
           priority=5)
s.add_task(worker="w1", task_id="B_1", family="B", module="pipe", deps=["A_1"], priority=3,
           params={"x": "1", "token": "t"}, param_visibilities={"token": 1}, resources={"db": 1})
s.add_task(worker="w2", task_id="B_1", family="B")
s.add_task(worker="w1", task_id="C_1", family="C", status="FAILED", expl="boom")
s.add_task(worker="w1", task_id="C_1", family="C", status="FAILED", expl="boom again")
s.add_task_batcher(worker="w2", task_family="D", batched_args=["day"], max_batch_size=10)
s.add_task(worker="w2", task_id="D_1", family="D", params={"day": "1"}, batchable=True)
assert s.get_work(worker="w1", host="alpha")["task_id"] == "B_1"
s.dump()

# what luigi itself holds, for the reader to compare with
tasks, workers, batchers = s._state.get_state()
print(json.dumps({
    "tasks": {
        tid: {
            "status": t.status, "deps": sorted(t.deps), "priority": t.priority, "family": t.family,
            "module": t.module, "params": t.params, "public_params": t.public_params,
            "hidden_params": t.hidden_params, "resources": t.resources, "workers": list(t.workers),
            "stakeholders": sorted(t.stakeholders), "worker_running": t.worker_running, "expl": t.expl,
            "failures": list(t.failures), "retry_policy": list(t.retry_policy), "batchable": t.batchable,
            "time": t.time, "updated": t.updated, "time_running": t.time_running, "retry": t.retry,
            "first_failure_time": t.first_failure_time,
        }
        for tid, t in tasks.items()
    },
    "workers": {
        wid: {"info": w.info, "reference": w.reference, "last_active": w.last_active,
              "tasks": sorted(t.id for t in w.tasks)}
        for wid, w in workers.items()
    },
    "batchers": batchers,
}))
"""


def write_with_luigi(tmp_path: Path, path: Path) -> dict[str, Any]:
    """Have the real luigi package write ``path`` through its own Scheduler.dump."""
    result = subprocess.run(
        [sys.executable, "-c", LUIGI_WRITER, str(path)],
        cwd=tmp_path,
        env=dict(os.environ, LUIGI_CONFIG_PATH=str(tmp_path / "none.cfg")),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_luigi_state_file_loads_without_luigi(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    expected = write_with_luigi(tmp_path, path)
    assert b"luigi.scheduler" in path.read_bytes()

    loaded = reload(path)
    tasks, workers, batchers = loaded.state.snapshot()
    assert set(tasks) == set(expected["tasks"]) == {"A_1", "B_1", "C_1", "D_1"}
    for task_id, want in expected["tasks"].items():
        task = tasks[task_id]
        got = {name: plain(getattr(task, name), name) for name in want}
        got["retry_policy"] = list(task.retry_policy)
        assert got == want, task_id
        assert task.owners is None  # luigi has no owners attribute: today's default
    assert tasks["B_1"].status == "RUNNING" and tasks["C_1"].status == "FAILED"
    for worker_id, want in expected["workers"].items():
        worker = workers[worker_id]
        assert worker.info == want["info"]
        assert worker.reference == want["reference"]
        assert worker.last_active == want["last_active"]
        assert sorted(t.id for t in worker.tasks) == want["tasks"]
    assert batchers == {w: {f: tuple(v) for f, v in fams.items()} for w, fams in expected["batchers"].items()}
    # luigi's failure history and retry policy keep counting: a third failure disables
    loaded.add_task(worker="w1", task_id="C_1", family="C", status="FAILED")
    assert known_task(loaded, "C_1").status == "DISABLED"


def test_luigi_state_file_loads_where_luigi_cannot_be_imported(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    write_with_luigi(tmp_path, path)
    script = (
        "import sys; sys.modules['luigi'] = None\n"  # any import of luigi now fails
        "from luigid.storage import codec\n"
        "from luigid.config import SchedulerConfig\n"
        "tasks, workers, batchers = codec.decode(open(sys.argv[1], 'rb').read(), "
        "SchedulerConfig().retry_policy())\n"
        "print(sorted(tasks), sorted(workers), sorted(batchers))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "['A_1', 'B_1', 'C_1', 'D_1'] ['w1', 'w2'] ['w2']"


def test_luigi_state_file_is_served_by_luigid(tmp_path: Path, luigids: Callable[..., CliLuigid]) -> None:
    path = tmp_path / "state" / "state.pickle"
    path.parent.mkdir()
    write_with_luigi(tmp_path, path)
    server = luigids(state_path=path).start()
    graph = server.call("graph")
    assert {k: v["status"] for k, v in graph.items()} == {
        "A_1": "DONE",
        "B_1": "RUNNING",
        "C_1": "FAILED",
        "D_1": "PENDING",
    }
    assert graph["B_1"]["deps"] == ["A_1"]
    assert graph["B_1"]["params"] == {"x": "1"}  # the hidden parameter stays hidden
    assert graph["A_1"]["priority"] == 5
    assert {w["name"] for w in server.call("worker_list")} == {"w1", "w2"}
    server.call("add_task", worker="w1", task_id="C_1", family="C", status="FAILED")
    assert server.call("graph")["C_1"]["status"] == "DISABLED"
    assert server.stop() == 0
    assert safe_pickle.loads(path.read_bytes())["format"] == "luigid-state"


PIPELINE = """
import os
import time

import luigi

ROOT = os.environ["PIPE_ROOT"]


class Step(luigi.Task):
    n = luigi.IntParameter()

    def requires(self):
        return Step(n=self.n - 1) if self.n > 0 else []

    def output(self):
        return luigi.LocalTarget(os.path.join(ROOT, "step%d.done" % self.n))

    def run(self):
        if self.n == 2:  # hold here while the test swaps the scheduler underneath
            open(os.path.join(ROOT, "step2.started"), "w").close()
            while not os.path.exists(os.path.join(ROOT, "gate")):
                time.sleep(0.1)
        with self.output().open("w") as out:
            out.write("done")
"""


@pytest.mark.slow
def test_switch_from_luigis_luigid_while_a_worker_runs(
    tmp_path: Path, luigids: Callable[..., CliLuigid]
) -> None:
    port = free_port()
    state = tmp_path / "state" / "state.pickle"
    state.parent.mkdir()
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    cfg = tmp_path / "luigi.test.cfg"
    cfg.write_text("[core]\nrpc-retry-attempts = 120\nrpc-retry-wait = 1\n")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(cfg), PIPE_ROOT=str(tmp_path), PYTHONPATH=str(tmp_path))
    theirs = subprocess.Popen(
        [sys.executable, "-c", "from luigi.cmdline import luigid; luigid()", "--address", "127.0.0.1",
         "--port", str(port), "--state-path", str(state)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = None
    try:
        wait_for(lambda: listening(port), what="luigi's luigid")
        worker = subprocess.Popen(
            [sys.executable, "-m", "luigi", "--module", "pipeline", "Step", "--n", "4", "--no-lock",
             "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "worker.log").open("w"),
        )  # fmt: skip
        wait_for(lambda: (tmp_path / "step2.started").exists(), what="the worker to reach step 2")
        theirs.terminate()
        assert theirs.wait(timeout=START_TIMEOUT) == 0
        assert state.exists()

        ours = luigids(state_path=state, port=port).start()
        try:
            statuses = {tid: t["status"] for tid, t in ours.call("graph").items()}
            assert sorted(statuses.values()) == ["DONE", "DONE", "PENDING", "PENDING", "RUNNING"]
            (tmp_path / "gate").touch()
            assert worker.wait(timeout=240) == 0, (tmp_path / "worker.log").read_text()[-3000:]
            statuses = {tid: t["status"] for tid, t in ours.call("graph").items()}
            assert sorted(statuses.values()) == ["DONE"] * 5
            assert all((tmp_path / f"step{n}.done").exists() for n in range(5))
        finally:
            assert ours.stop() == 0
    finally:
        for proc in (theirs, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


# ------------------------------------------------------- damaged and malicious files


class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def malicious_payloads(marker: Path) -> dict[str, bytes]:
    command = f"touch {marker}"
    return {
        "bare": pickle.dumps(_RunsCommand(command)),
        "inside a luigi-shaped tuple": pickle.dumps(({"A_1": _RunsCommand(command)}, {}, {})),
        "inside a versioned document": pickle.dumps(
            {"format": "luigid-state", "version": 1, "tasks": {}, "workers": {"w": _RunsCommand(command)}}
        ),
    }


def test_crafted_pickle_would_run_code_with_plain_pickle(tmp_path: Path) -> None:
    """The payloads are real: the standard unpickler runs them."""
    marker = tmp_path / "pwned"
    payload = malicious_payloads(marker)["bare"]
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=payload, check=True, timeout=60)  # fmt: skip
    assert marker.exists()


@pytest.mark.parametrize("variant", ["bare", "inside a luigi-shaped tuple", "inside a versioned document"])
def test_malicious_pickle_is_refused_in_process(tmp_path: Path, variant: str, allow_error_logs: None) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "state.pickle"
    payload = malicious_payloads(marker)[variant]
    path.write_bytes(payload)
    scheduler = Scheduler(SchedulerConfig(state_path=str(path)))
    assert statefile.load_into(scheduler.state, str(path)) is False
    assert not marker.exists()
    assert scheduler.state.count() == 0
    (aside,) = tmp_path.glob("state.pickle.corrupt-*")
    assert aside.read_bytes() == payload


def _truncated(tmp_path: Path) -> bytes:
    busy_scheduler(tmp_path / "full.pickle").dump()
    whole = (tmp_path / "full.pickle").read_bytes()
    return whole[: len(whole) // 2]


DAMAGED = {
    "truncated": _truncated,
    "random bytes": lambda tmp_path: random.Random(7).randbytes(4096),
    "empty": lambda tmp_path: b"",
    "malicious": lambda tmp_path: malicious_payloads(tmp_path / "pwned")["inside a luigi-shaped tuple"],
    "wrong shape": lambda tmp_path: pickle.dumps(["just", "a", "list"]),
}


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_damaged_file_is_quarantined_and_never_overwritten(
    tmp_path: Path, luigids: Callable[..., CliLuigid], kind: str
) -> None:
    path = tmp_path / "state" / "state.pickle"
    path.parent.mkdir()
    payload = DAMAGED[kind](tmp_path)
    path.write_bytes(payload)
    server = luigids(state_path=path).start()
    assert server.call("graph") == {}
    (aside,) = path.parent.glob("state.pickle.corrupt-*")
    assert aside.read_bytes() == payload
    assert "unusable" in server.stderr() and str(aside) in server.stderr()
    server.call("add_task", worker="w", task_id="New_1", family="New")
    assert server.stop() == 0
    assert saved_task_ids(path) == {"New_1"}
    assert aside.read_bytes() == payload
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------- kill -9 safety


class AddTaskStream:
    """Sends add_task calls one after another, numbering the tasks, until stopped."""

    def __init__(self, port: int, start: int) -> None:
        self.port = port
        self.next = start
        self.sent = start  # tasks below this number have been sent at least once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            task_id = f"T_{self.next:06d}"
            self.sent = self.next + 1
            try:
                session.post(
                    f"http://127.0.0.1:{self.port}/api/add_task",
                    data={"data": json.dumps({"worker": "w", "task_id": task_id, "family": "T"})},
                    timeout=10,
                ).raise_for_status()
            except requests.RequestException:
                return  # the server was killed
            self.next += 1

    def __enter__(self) -> AddTaskStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _ids_on_disk(path: Path) -> set[str]:
    try:
        return saved_task_ids(path)
    except OSError:
        return set()


@pytest.mark.slow
def test_kill_9_during_add_task_stream_loses_only_unsnapshotted_updates(
    tmp_path: Path, luigids: Callable[..., CliLuigid]
) -> None:
    path = tmp_path / "state" / "state.pickle"
    config = "[scheduler]\nstate_snapshot_interval = 0.2\n"
    rng = random.Random(3)
    next_number = 0
    kept: set[str] = set()
    for _ in range(5):
        server = luigids(state_path=path, config=config).start()
        graph = server.call("graph")
        assert kept <= set(graph), "a snapshotted task was lost"
        assert not list(path.parent.glob("state.pickle.corrupt-*"))
        assert not list(path.parent.glob(".state.pickle.*.tmp"))  # leftovers of the kill are cleaned
        with AddTaskStream(server.port, next_number):

            def new_snapshot(seen: set[str] = kept) -> bool:
                return bool(_ids_on_disk(path) - seen)

            wait_for(new_snapshot, what="a snapshot with new tasks")
            time.sleep(rng.uniform(0.0, 0.6))
            server.kill()
        on_disk = saved_task_ids(path)  # one complete snapshot, never a torn file
        numbers = sorted(int(task_id[2:]) for task_id in on_disk)
        assert numbers == list(range(len(numbers))), "a snapshot is a consistent prefix of the stream"
        assert kept <= on_disk
        kept = on_disk
        next_number = len(on_disk)  # continue the numbering after what survived
    final = luigids(state_path=path, config=config).start()
    assert kept <= set(final.call("graph"))
    assert final.stop() == 0


# ------------------------------------------------- shared values and format 3 (issue 14)


def _shared_state(path: Path) -> Scheduler:
    s = Scheduler(SchedulerConfig(state_path=str(path)))
    for i in range(5):
        s.add_task(worker="w1", task_id=f"T_{i}", family="T", params={"day": "2024-01-01"}, deps=[f"U_{i}"])
    s.add_task(worker="w2", task_id="T_0", family="T")
    return s


def test_tasks_share_equal_stakeholders_runners_and_names_after_a_reload(tmp_path: Path) -> None:
    """Tasks added by one worker hold one stakeholder set, one runner tuple, one family
    string and one string per equal parameter value, before and after a reload."""
    path = tmp_path / "state.pickle"
    original = _shared_state(path)
    original.dump()
    for s in (original, reload(path)):
        tasks = [known_task(s, f"T_{i}") for i in range(1, 5)]
        assert all(t.stakeholders == {"w1"} and t.workers == ("w1",) for t in tasks)
        assert len({id(t.stakeholders) for t in tasks}) == 1
        assert len({id(t.workers) for t in tasks}) == 1
        assert len({id(t.params["day"]) for t in tasks}) == 1
        assert len({id(t.family) for t in tasks}) == 1
        # a change replaces the shared value, it never edits it for the other tasks
        assert known_task(s, "T_0").stakeholders == {"w1", "w2"}
        assert known_task(s, "T_0").workers == ("w1", "w2")
    assert portrait(reload(path)) == portrait(original)


def test_version_2_file_with_sets_and_runner_dicts_still_loads(tmp_path: Path) -> None:
    """Format 2 stored deps and stakeholders as sets and runners as a dict: loaded, they
    become the shared frozensets and tuples live tasks hold."""
    path = tmp_path / "state.pickle"
    original = busy_scheduler(path)
    original.dump()
    document = codec.read_document(path.read_bytes())
    fields = codec.TASK_FIELDS
    widen: dict[str, Callable[[Any], Any]] = {"deps": set, "stakeholders": set, "workers": dict.fromkeys}
    document["version"] = 2
    document["tasks"] = [
        tuple(widen[name](value) if name in widen else value for name, value in zip(fields, row, strict=True))
        for row in document["tasks"]
    ]
    path.write_bytes(pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL))
    again = reload(path)
    assert portrait(again) == portrait(original)
    b_task = known_task(again, "B_1")
    assert type(b_task.deps) is tuple and type(b_task.stakeholders) is frozenset
    assert b_task.workers == ("w1", "w2")


def test_many_tasks_are_written_in_chunks_and_read_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codec, "CHUNK_TASKS", 2)
    path = tmp_path / "state.pickle"
    original = _shared_state(path)
    original.dump()
    payload = path.read_bytes()
    header = safe_pickle.loads(payload)
    assert header["task_chunks"] == 5 and "tasks" not in header  # 10 tasks (5 placeholders), 2 a chunk
    again = reload(path)
    assert portrait(again) == portrait(original)
    assert [t.id for t in again.state.tasks()] == [t.id for t in original.state.tasks()]
    assert [t.seq for t in again.state.tasks()] == [t.seq for t in original.state.tasks()]


def test_a_missing_chunk_is_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_error_logs: None
) -> None:
    monkeypatch.setattr(codec, "CHUNK_TASKS", 2)
    path = tmp_path / "state.pickle"
    _shared_state(path).dump()
    payload = path.read_bytes()
    header = safe_pickle.loads(payload)
    path.write_bytes(pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL))  # the rows left off
    scheduler = Scheduler(SchedulerConfig(state_path=str(path)))
    assert statefile.load_into(scheduler.state, str(path)) is False
    assert scheduler.state.count() == 0
    assert list(tmp_path.glob("state.pickle.corrupt-*"))
