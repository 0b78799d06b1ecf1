"""``luigid state export --luigi``: the way back to luigi's own daemon.

The round trip uses real parts only: a luigid daemon, real luigi workers building a state on
it, SIGTERM, the export as a subprocess, then luigi's own ``Scheduler`` (and luigi's own
daemon) loading the exported file. luigi is imported here, never by luigid.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi.scheduler
import pytest

from luigid.config import SchedulerConfig
from luigid.core.model import DONE, PENDING, RetryPolicy, Task, Worker
from luigid.core.state import State
from luigid.storage import codec, statefile
from luigid.storage.journal import Journal
from luigid.storage.luigi_export import encode_for_luigi
from luigid.storage.luigi_pickle import Instance, dumps
from tests.support import Luigid, wait_for
from tests.support.cli import call, luigid_tool
from tests.support.daemon import clean_env
from tests.support.portrait import plain

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STATUSES = ("PENDING", "RUNNING", "DONE", "FAILED", "DISABLED", "UNKNOWN", "BATCH_RUNNING")
TIMEOUT = 60.0


# ------------------------------------------------------------------------ helpers


def export(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``luigid state ...`` as an operator runs it."""
    return luigid_tool("state", *args, cwd=cwd, env=env)


def as_json(value: Any) -> Any:
    """What a reply looks like after the wire (luigi's daemon JSON-encodes them too)."""
    return json.loads(json.dumps(value))


def task_lists(call: Any) -> dict[str, Any]:
    return {status: as_json(call("task_list", status=status, upstream_status="")) for status in STATUSES}


def stable_workers(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """worker_list entries without ``last_active`` (a worker still pinging moves it) and sorted by name."""
    return sorted(
        ({k: v for k, v in w.items() if k != "last_active"} for w in workers), key=lambda w: w["name"]
    )


def load_with_luigi(path: Path) -> luigi.scheduler.Scheduler:
    scheduler = luigi.scheduler.Scheduler(state_path=str(path), record_task_history=False)
    scheduler.load()
    return scheduler


@dataclass
class Exported:
    home: Path
    state_path: Path
    out: Path
    summary: str
    tasks: dict[str, Any]  # luigid's task_list replies by status
    workers: list[dict[str, Any]]  # luigid's worker_list reply
    ids: dict[str, str]  # task id by family


# ----------------------------------------------------------------- the real run


def _worker(home: Path, port: int, task: str, config: Path) -> subprocess.Popen[bytes]:
    env = clean_env(config)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["LUIGID_EXPORT_TEST_OUT"] = str(home / "out")
    argv = [sys.executable, "-m", "luigi", "--module", "luigi_export_tasks", task]
    argv += ["--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), "--workers", "1", "--no-lock"]
    log = open(home / f"worker-{task}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed by the OS at exit
    return subprocess.Popen(argv, cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def tracked(running: dict[str, Any]) -> bool:
    """Slow runs and has told its tracking URL."""
    return any(task.get("tracking_url") for task in running.values())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    home = tmp_path_factory.mktemp("export")
    (home / "out").mkdir()
    state_path = home / "state.pickle"
    # not luigi.cfg: the workers run in the same folder and must not read the daemon's config
    daemon = Luigid(
        home,
        "[scheduler]\nrecord_task_history = false\n\n[resources]\nr = 2\n",
        state_path=state_path,
        config_name="luigid.cfg",
    )
    worker_cfg = home / "worker.cfg"
    worker_cfg.write_text("[core]\nno_lock = true\n\n[worker]\nkeep_alive = false\nwait_interval = 0.1\n")
    daemon.start(timeout=TIMEOUT)
    port = daemon.port
    slow: subprocess.Popen[bytes] | None = None
    try:
        # two runs: Broken fails twice (two failure times), Fragile is disabled after its one failure
        for _ in range(2):
            assert _worker(home, port, "Root", worker_cfg).wait(TIMEOUT) == 0
        slow = _worker(home, port, "Slow", worker_cfg)
        wait_for(
            lambda: tracked(call(port, "task_list", status="RUNNING", upstream_status="")), TIMEOUT, "Slow"
        )
        slow.kill()  # the task stays RUNNING on a worker luigid still knows
        slow.wait()
        tasks = task_lists(lambda method, **kw: call(port, method, **kw))
        workers = as_json(call(port, "worker_list"))
    finally:
        if slow is not None and slow.poll() is None:
            slow.kill()
            slow.wait()
        code = daemon.stop()
    assert code == 0, daemon.log
    out = home / "for-luigi.pickle"
    done = export("export", "--luigi", str(out), "--state-path", str(state_path))
    assert done.returncode == 0, done.stderr
    ids = {task["name"]: task_id for by_id in tasks.values() for task_id, task in by_id.items()}
    yield Exported(home, state_path, out, done.stdout, tasks, workers, ids)


# ------------------------------------------------------------------- round trip


def test_luigi_scheduler_lists_every_task_as_luigid_did(exported: Exported) -> None:
    scheduler = load_with_luigi(exported.out)
    assert task_lists(lambda method, **kw: getattr(scheduler, method)(**kw)) == exported.tasks
    assert sum(map(len, exported.tasks.values())) == 7  # Root, two Leaf, Reporter, Broken, Fragile, Slow
    assert stable_workers(as_json(scheduler.worker_list())) == stable_workers(exported.workers)


def test_summary_line_counts_tasks_and_workers(exported: Exported) -> None:
    workers = len(exported.workers)
    tasks = sum(map(len, exported.tasks.values()))
    assert exported.summary == (
        f"Exported {tasks} tasks and {workers} workers from {exported.state_path} to {exported.out}\n"
    )


def test_every_attribute_luigi_sets_is_there_with_our_values(exported: Exported) -> None:
    ours, our_workers, _ = codec.decode(exported.state_path.read_bytes(), RetryPolicy(0, 0, 0))
    state = load_with_luigi(exported.out)._state
    theirs, their_workers = state._tasks, state._active_workers
    assert set(theirs) == set(ours)
    fresh_task = set(vars(luigi.scheduler.Task("x", "PENDING", None)))
    for task_id, task in ours.items():
        loaded = theirs[task_id]
        assert type(loaded) is luigi.scheduler.Task
        assert fresh_task <= set(vars(loaded)), fresh_task - set(vars(loaded))
        assert isinstance(loaded.workers, luigi.scheduler.OrderedSet)
        assert isinstance(loaded.retry_policy, luigi.scheduler.RetryPolicy)
        assert type(loaded.failures) is deque
        assert list(loaded.workers) == list(task.workers)
        assert tuple(loaded.retry_policy) == tuple(task.retry_policy)
        assert list(loaded.failures) == list(task.failures)
        assert getattr(loaded, "resources_running", None) == task.resources_running
        assert loaded.deps == set(task.deps)  # luigi's set; luigid's tuple of the same ids
        for name in fresh_task - {"workers", "retry_policy", "failures", "deps"}:
            assert getattr(loaded, name) == getattr(task, name), (task_id, name)
    fresh_worker = set(vars(luigi.scheduler.Worker("w")))
    assert set(their_workers) == set(our_workers)
    for worker_id, worker in our_workers.items():
        loaded_worker = their_workers[worker_id]
        assert type(loaded_worker) is luigi.scheduler.Worker
        assert set(vars(loaded_worker)) == fresh_worker
        for name in fresh_worker - {"tasks"}:
            assert getattr(loaded_worker, name) == getattr(worker, name), (worker_id, name)
        # the very Task objects of the task dict, as luigi's add_task leaves them
        assert all(theirs[task.id] is task for task in loaded_worker.tasks)
        assert {task.id for task in loaded_worker.tasks} == {
            t for t, task in ours.items() if worker_id in task.workers
        }


def test_statuses_failures_and_fields_the_run_produced(exported: Exported) -> None:
    tasks = load_with_luigi(exported.out)._state._tasks
    ids = exported.ids
    broken, fragile, root = tasks[ids["Broken"]], tasks[ids["Fragile"]], tasks[ids["Root"]]
    assert broken.status == "FAILED" and len(broken.failures) == 2
    assert broken.params == {"attempt_note": "7"}
    assert fragile.status == "DISABLED" and fragile.scheduler_disable_time is not None
    assert fragile.retry_policy.retry_count == 1 and len(fragile.failures) == 1
    assert root.status == "PENDING" and len(root.deps) == 5
    assert {tasks[dep].family for dep in root.deps} == {"Leaf", "Reporter", "Broken", "Fragile"}
    leaves = [task for task in tasks.values() if task.family == "Leaf"]
    assert [leaf.status for leaf in leaves] == ["DONE", "DONE"]
    assert all(leaf.priority == 5 and leaf.resources == {"r": 1} for leaf in leaves)
    assert all(leaf.module == "luigi_export_tasks" for leaf in leaves)
    assert all(leaf.param_visibilities["token"] == 1 and "token" not in leaf.public_params for leaf in leaves)
    reporter = tasks[ids["Reporter"]]
    assert reporter.tracking_url is None  # luigi (and luigid) drop it once the task stops running
    assert reporter.status_message == "halfway there"
    assert reporter.progress_percentage == 50
    assert reporter.accepts_messages is True
    slow = tasks[ids["Slow"]]
    assert slow.status == "RUNNING" and slow.worker_running and slow.resources_running == {"r": 1}
    assert slow.time_running is not None and slow.tracking_url == "http://tracker.invalid/slow"
    assert "Broken fails on purpose" in json.dumps(broken.expl)


def test_luigis_own_daemon_serves_the_exported_state(exported: Exported) -> None:
    """What an operator does on the way back: luigi's luigid on the exported file."""
    state_path = exported.home / "luigi-daemon.pickle"  # luigi's daemon saves over it when it stops
    shutil.copyfile(exported.out, state_path)
    daemon = Luigid(
        exported.home,
        "[scheduler]\nrecord_task_history = false\n",
        state_path=state_path,
        command=[sys.executable, "-c", "import luigi.cmdline as c; c.luigid()"],
        config_name="luigi-daemon.cfg",
        log_name="luigi-daemon.log",
    ).start(timeout=TIMEOUT)
    try:
        assert task_lists(lambda method, **kw: call(daemon.port, method, **kw)) == exported.tasks
    finally:
        daemon.stop()
    output = daemon.log
    assert "Error when loading state" not in output and "Traceback" not in output, output


# --------------------------------------------------------- without luigi around

_BLOCK_LUIGI = """
import sys

class NoLuigi:
    def find_spec(self, name, path=None, target=None):
        if name == "luigi" or name.startswith("luigi."):
            raise ImportError("luigi must not be imported by luigid")
        return None

sys.meta_path.insert(0, NoLuigi())
from luigid.cmdline import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m == "luigi" or m.startswith("luigi.")], "luigi was imported"
sys.exit(code)
"""


def test_export_runs_with_luigi_unimportable(exported: Exported) -> None:
    out = exported.home / "without-luigi.pickle"
    argv = [sys.executable, "-c", _BLOCK_LUIGI, "state", "export", "--luigi", str(out)]
    argv += ["--state-path", str(exported.state_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    scheduler = load_with_luigi(out)  # bytes differ: set order follows each process's string hashes
    assert task_lists(lambda method, **kw: getattr(scheduler, method)(**kw)) == exported.tasks


# ------------------------------------------------------------- our own formats


def _config(path: Path) -> SchedulerConfig:
    return SchedulerConfig(state_path=str(path))


def _small_state(path: Path) -> State:
    state = State(_config(path))
    policy = RetryPolicy(3, 100.0, 60.0)
    first = Task("A(x=1)", PENDING, None, retry_policy=policy, family="A", params={"x": "1"})
    second = Task("B()", PENDING, {"A(x=1)"}, retry_policy=policy, family="B", priority=3)
    worker = Worker("w1")
    first.workers = ("w1",)
    first.stakeholders = frozenset({"w1"})
    second.stakeholders = frozenset({"w1"})
    state.restore({first.id: first, second.id: second}, {"w1": worker}, {"w1": {"B": ({"p": None}, 5.0)}})
    return state


def test_status_journal_after_the_snapshot_is_exported(tmp_path: Path) -> None:
    """A task that went DONE after the last snapshot (luigid killed) is DONE for luigi too."""
    path = tmp_path / "state.pickle"
    state = _small_state(path)
    journal = Journal(str(path))
    statefile.save_state(state, str(path), journal)
    journal.record("A(x=1)", DONE, time.time())
    journal.close()
    out = tmp_path / "out.pickle"
    done = export("export", "--luigi", str(out), "--state-path", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Exported 2 tasks and 1 workers from ")
    state_ = load_with_luigi(out)._state
    assert state_._tasks["A(x=1)"].status == "DONE"
    assert state_._tasks["B()"].deps == {"A(x=1)"} and state_._tasks["B()"].priority == 3
    assert state_._task_batchers == {"w1": {"B": ({"p": None}, 5.0)}}
    assert [t.id for t in state_._active_workers["w1"].tasks] == ["A(x=1)"]


def test_a_version_1_file_is_exported(tmp_path: Path) -> None:
    """Format 1 pickled luigid's Task and Worker objects (the classes' old module path)."""
    path = tmp_path / "state.pickle"
    tasks, workers, _ = _small_state(path).snapshot()

    def record(module: str, name: str, obj: Any, slots: tuple[str, ...]) -> Instance:
        return Instance(
            module, name, {s: getattr(obj, s) for s in slots if s not in ("tasks", "retry_policy")}
        )

    document = {
        "format": codec.FORMAT,
        "version": 1,
        "tasks": {k: record("luigid.model", "Task", t, Task.FIELDS) for k, t in tasks.items()},
        "workers": {k: record("luigid.model", "Worker", w, Worker.__slots__) for k, w in workers.items()},
        "batchers": {},
    }
    path.write_bytes(dumps(document))
    out = tmp_path / "out.pickle"
    done = export("export", "--luigi", str(out), "--state-path", str(path))
    assert done.returncode == 0, done.stderr
    loaded = load_with_luigi(out)._state._tasks
    assert set(loaded) == {"A(x=1)", "B()"} and loaded["A(x=1)"].params == {"x": "1"}


def test_the_export_reads_back_into_luigid(tmp_path: Path) -> None:
    """luigid reads luigi's files too, so the exported file also works going forward again."""
    tasks, workers, batchers = _small_state(tmp_path / "s").snapshot()
    again, again_workers, again_batchers = codec.decode(
        encode_for_luigi(tasks, workers, batchers), RetryPolicy(9, 9, 9)
    )
    for name in codec.TASK_FIELDS:
        assert [plain(getattr(again[k], name), name) for k in tasks] == [
            plain(getattr(t, name), name) for t in tasks.values()
        ], name
    assert set(again_workers) == {"w1"} and again_batchers == batchers


def test_what_luigi_reads_is_a_plain_pickle(tmp_path: Path) -> None:
    tasks, workers, batchers = _small_state(tmp_path / "s").snapshot()
    loaded = pickle.loads(encode_for_luigi(tasks, workers, batchers))
    assert type(loaded) is tuple and len(loaded) == 3
    assert [type(t) for t in loaded[0].values()] == [luigi.scheduler.Task] * 2


# --------------------------------------------------------------------- bad input


def test_missing_state_file(tmp_path: Path) -> None:
    done = export("export", "--luigi", str(tmp_path / "out"), "--state-path", str(tmp_path / "nothing"))
    assert done.returncode == 1
    assert done.stderr == f"luigid state: no state file at {tmp_path / 'nothing'}\n"
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite_the_input(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    statefile.save_state(_small_state(path), str(path))
    before = path.read_bytes()
    link = tmp_path / "link.pickle"
    link.symlink_to(path)
    for target in (path, link):
        done = export("export", "--luigi", str(target), "--state-path", str(path))
        assert done.returncode == 1
        assert done.stderr.startswith("luigid state: refusing to overwrite the luigid state file ")
        assert done.stderr.count("\n") == 1
    assert path.read_bytes() == before


def test_damaged_state_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    path.write_bytes(b"not a pickle at all")
    done = export("export", "--luigi", str(tmp_path / "out"), "--state-path", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith(f"luigid state: state file {path} is unusable: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert path.read_bytes() == b"not a pickle at all"  # not moved aside as the daemon would
    assert not (tmp_path / "out").exists()


def test_output_folder_missing(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    statefile.save_state(_small_state(path), str(path))
    done = export("export", "--luigi", str(tmp_path / "no" / "out"), "--state-path", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith(f"luigid state: cannot write {tmp_path / 'no' / 'out'}: ")
    assert "Traceback" not in done.stderr


def test_state_path_comes_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "configured.pickle"
    statefile.save_state(_small_state(path), str(path))
    config = tmp_path / "luigi.cfg"
    config.write_text(f"[scheduler]\nstate_path = {path}\n")
    done = export("export", "--luigi", str(tmp_path / "out"), cwd=tmp_path, env=clean_env(config))
    assert done.returncode == 0, done.stderr
    assert f"from {path} to " in done.stdout


def test_usage_errors(tmp_path: Path) -> None:
    assert export().returncode == 2
    done = export("export", "--state-path", str(tmp_path / "x"))
    assert done.returncode == 2 and "--luigi" in done.stderr
