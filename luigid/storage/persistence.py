"""The state file: its format, loading it safely, and writing it so it is never torn.

* **Format.** A pickled dict ``{"format": "luigid-state", "version": N, ...}`` holding only
  plain builtins. Version 2 stores each task as a row (a tuple of its attributes in the order
  ``task_fields`` names) and each worker likewise: rows load at C speed and become ``Task``
  objects in one assignment each, which makes a restart at 100k tasks several times faster
  than version 1's pickled objects. Older files are read too: version 1 (pickled ``Task`` and
  ``Worker`` objects), luigid's first unversioned ``(tasks, workers, batchers)`` tuple, and the
  ``(tasks, workers[, batchers])`` tuple luigi 3.x's own luigid writes (its classes are mapped
  onto ours without importing luigi).
* **Loading** goes through ``luigid.storage.safe_pickle``, which runs no code from the file. A file
  that cannot be read is renamed to ``<path>.corrupt-<timestamp>`` (never overwritten), the
  reason is logged and the scheduler starts empty.
* **Writing** goes to a temporary file in the same folder, is fsynced and renamed over the
  old file, so a crash at any moment leaves one complete snapshot on disk.
* **Snapshots** while serving are written by a forked child (``Snapshotter``): the parent
  only pays for ``fork()``, the child pickles its frozen copy of memory and exits.
* **The status journal** (``luigid.storage.journal``) holds the status changes made after the
  snapshot was taken; each snapshot records the journal generation it covers
  (``journal_generation``) and loading replays later DONE records on top of it.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import logging
import operator
import os
import pickle
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from luigid.core import gcpause
from luigid.core.model import DONE, FAILED, PENDING, RUNNING, STATUSES, RetryPolicy, Task, Worker
from luigid.core.state import Batcher, State
from luigid.storage import safe_pickle
from luigid.storage.journal import Journal

logger = logging.getLogger("luigi.server")

FORMAT = "luigid-state"
#: Bump when the layout changes, and teach ``decode`` to read the previous one.
#: 1: pickled Task/Worker objects; 2: rows of plain values (``TASK_FIELDS``/``WORKER_FIELDS``)
VERSION = 2

#: What a stored task row holds, in order: every attribute but those the state derives.
TASK_FIELDS: tuple[str, ...] = tuple(name for name in Task.__slots__ if name not in Task.DERIVED)
#: What a stored worker row holds; the tasks a worker may run are rebuilt from the tasks.
WORKER_FIELDS: tuple[str, ...] = tuple(name for name in Worker.__slots__ if name != "tasks")
_task_row = operator.attrgetter(*TASK_FIELDS)
_worker_row = operator.attrgetter(*WORKER_FIELDS)

Tasks = dict[str, Task]
Workers = dict[str, Worker]
Batchers = dict[str, dict[str, Batcher]]


class StateFileError(Exception):
    """The state file can neither be used nor set aside (one line for the operator)."""


class DamagedStateFile(Exception):
    """The file is not a readable luigid/luigi state; the message says why."""


# ---------------------------------------------------------------------------- format


def encode(state: State, journal_generation: int | None = None) -> bytes:
    """``journal_generation``: the last status-journal generation this snapshot covers.
    Pickling allocates millions of small objects and none of them is garbage: the collector
    is paused, or chasing them would more than double the time at 100k tasks."""
    with gcpause.paused():
        return _encode(state, journal_generation)


def _encode(state: State, journal_generation: int | None) -> bytes:
    tasks, workers, batchers = state.snapshot()
    document = {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": time.time(),
        "task_fields": TASK_FIELDS,
        "tasks": list(map(_task_row, tasks.values())),
        "worker_fields": WORKER_FIELDS,
        "workers": list(map(_worker_row, workers.values())),
        "batchers": batchers,
    }
    if journal_generation is not None:
        document["journal_generation"] = journal_generation
    return pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL)


def decode(payload: bytes, policy: RetryPolicy) -> tuple[Tasks, Workers, Batchers]:
    """Read any state file luigid or luigi 3.x wrote. ``policy`` fills retry-policy gaps."""
    tasks, workers, batchers, _ = decode_with_generation(payload, policy)
    return tasks, workers, batchers


def decode_with_generation(
    payload: bytes, policy: RetryPolicy
) -> tuple[Tasks, Workers, Batchers, int | None]:
    """``decode``, plus the journal generation the file covers (None: a file from before
    journals, or luigi's, which no journal on disk can be trusted to follow)."""
    with gcpause.paused():  # building the tasks allocates as much again as unpickling
        return _decode_with_generation(payload, policy)


def _decode_with_generation(
    payload: bytes, policy: RetryPolicy
) -> tuple[Tasks, Workers, Batchers, int | None]:
    generation: int | None = None
    try:
        document = safe_pickle.loads(payload)
    except safe_pickle.RefusedGlobal as exc:
        raise DamagedStateFile(str(exc)) from exc
    except Exception as exc:  # truncated, garbage, bad opcodes, records that refuse their state
        raise DamagedStateFile(f"not a readable pickle ({type(exc).__name__}: {exc})") from exc

    if isinstance(document, dict):
        if document.get("format") != FORMAT:
            raise DamagedStateFile("not a luigid state file (no format marker)")
        version = document.get("version")
        if not isinstance(version, int) or version < 1:
            raise DamagedStateFile(f"unknown state format version {version!r}")
        if version > VERSION:
            raise StateFileError(
                f"written by a newer luigid (state format version {version}; this luigid reads up to "
                f"{VERSION}); upgrade luigid or move the file away"
            )
        stored = document.get("journal_generation")
        if isinstance(stored, int) and not isinstance(stored, bool) and stored >= 0:
            generation = stored
        if version >= 2:
            try:
                return (*_from_rows(document, policy), generation)
            except DamagedStateFile:
                raise
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                raise DamagedStateFile(f"inconsistent state records ({exc})") from exc
        raw = (document.get("tasks"), document.get("workers"), document.get("batchers", {}))
    elif isinstance(document, (tuple, list)) and len(document) in (2, 3):
        # luigid before versioning, and luigi's own luigid: (tasks, workers[, batchers])
        raw = (document[0], document[1], document[2] if len(document) == 3 else {})
    else:
        raise DamagedStateFile(f"unexpected top-level {type(document).__name__}")
    try:
        return (*_convert(*raw, policy=policy), generation)
    except DamagedStateFile:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise DamagedStateFile(f"inconsistent state records ({exc})") from exc


def _row_loader(fields: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Task]:
    """A function making a ``Task`` from a row of ``fields``: one unpacking assignment per
    row, about three times faster than a ``setattr`` per attribute at 100k tasks. Its source
    is generated from the slot names (as ``dataclasses`` generates ``__init__``), so it
    cannot drift from ``TASK_FIELDS``; derived slots get a new task's values."""
    template = Task("", PENDING, None, retry_policy=RetryPolicy(0, 0, 0))
    derived = {f"_{name}": getattr(template, name) for name in sorted(Task.DERIVED)}
    if not all(name in Task.__slots__ and name.isidentifier() for name in fields):
        raise ValueError(f"not task attributes: {fields!r}")
    source = "\n".join(
        [
            f"def load_task(row, _new=Task.__new__, _Task=Task, {', '.join(f'{k}={k}' for k in derived)}):",
            "    task = _new(_Task)",
            f"    ({''.join(f'task.{name}, ' for name in fields)}) = row",
            *(f"    task.{name[1:]} = {name}" for name in derived),
            "    return task",
        ]
    )
    namespace: dict[str, Any] = {"Task": Task, **derived}
    exec(compile(source, "<luigid state row loader>", "exec"), namespace)  # our own source, see above
    loader: Callable[[tuple[Any, ...]], Task] = namespace["load_task"]
    return loader


_load_task_row = _row_loader(TASK_FIELDS)


def _rows(document: dict[str, Any], kind: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The field names and rows of ``kind`` ("task" or "worker"), each row checked for width."""
    fields, rows = document.get(f"{kind}_fields"), document.get(f"{kind}s")
    if not isinstance(fields, tuple) or not isinstance(rows, list):
        raise DamagedStateFile(f"{kind}s must be a list of rows with their field names")
    width = len(fields)
    if not all(type(row) is tuple and len(row) == width for row in rows):
        raise DamagedStateFile(f"malformed {kind} row")
    return fields, rows


def _by_name(
    fields: tuple[str, ...], rows: list[tuple[Any, ...]], kind: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, attributes by name) for each row: the slow path, for layouts other than ours."""
    for row in rows:
        named = dict(zip(fields, row, strict=True))
        key = named.get("id")
        if not isinstance(key, str):
            raise DamagedStateFile(f"{kind} id {key!r} is not a string")
        yield key, named


def _from_rows(document: dict[str, Any], policy: RetryPolicy) -> tuple[Tasks, Workers, Batchers]:
    """Version 2 and later: tasks and workers as rows."""
    task_fields, rows = _rows(document, "task")
    worker_fields, worker_rows = _rows(document, "worker")
    tasks: Tasks = {}
    if task_fields == TASK_FIELDS:
        # written by this version: rows become tasks directly; the few checks here are what
        # the indexes rely on when they are rebuilt
        for task in map(_load_task_row, rows):
            if (
                type(task.id) is not str
                or task.status not in STATUSES
                or type(task.deps) is not set
                or type(task.stakeholders) is not set
                or type(task.workers) is not dict
            ):
                raise DamagedStateFile(f"task {task.id!r} has malformed attributes")
            tasks[task.id] = task
    else:
        # another layout (an older or newer luigid's): attribute by attribute, with defaults
        build = _TaskBuilder(policy)
        tasks = {key: build(key, named) for key, named in _by_name(task_fields, rows, "task")}
    named_workers = _by_name(worker_fields, worker_rows, "worker")
    workers = {key: _worker_from(key, named, {}) for key, named in named_workers}
    return tasks, workers, _batchers_from(document.get("batchers", {}))


def _convert(
    raw_tasks: Any, raw_workers: Any, raw_batchers: Any, policy: RetryPolicy
) -> tuple[Tasks, Workers, Batchers]:
    if not isinstance(raw_tasks, dict) or not isinstance(raw_workers, dict):
        raise DamagedStateFile("tasks and workers must be mappings")
    build = _TaskBuilder(policy)
    tasks: Tasks = {}
    by_record: dict[int, Task] = {}
    for key, record in raw_tasks.items():
        if not isinstance(key, str) or not isinstance(record, safe_pickle.TaskRecord):
            raise DamagedStateFile(f"entry {key!r} is not a task")
        task = build(key, _fields(record))
        tasks[key] = by_record[id(record)] = task
    workers: Workers = {}
    for key, record in raw_workers.items():
        if not isinstance(key, str) or not isinstance(record, safe_pickle.WorkerRecord):
            raise DamagedStateFile(f"entry {key!r} is not a worker")
        workers[key] = _worker_from(key, _fields(record), by_record)
    return tasks, workers, _batchers_from(raw_batchers)


def _fields(record: safe_pickle.Record) -> dict[str, Any]:
    return getattr(record, "fields", None) or {}


def _ordered_ids(value: Any) -> dict[str, None]:
    """luigi keeps a task's runners in an OrderedSet, luigid in an insertion-ordered dict."""
    if isinstance(value, safe_pickle.OrderedSetRecord):
        value = value.items()
    elif type(value) is dict:
        return value
    return dict.fromkeys(value or ())


def _as_set(value: Any) -> set[Any]:
    return value if type(value) is set else set(value or ())


def _as_failures(value: Any) -> deque[Any] | tuple[()]:
    """Failure times: a deque when there are any, the empty tuple (as new tasks have) when not."""
    if not value:
        return ()
    return value if type(value) is deque else deque(value)


def _as_dict(value: Any) -> dict[str, Any]:
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return dict(value)


#: How each stored attribute becomes what ``luigid.core.model.Task`` holds.
_TASK_COERCE: dict[str, Callable[[Any], Any]] = {
    "workers": _ordered_ids,
    "stakeholders": _as_set,
    "deps": _as_set,
    "failures": _as_failures,
    "params": _as_dict,
    "public_params": _as_dict,
    "hidden_params": _as_dict,
    "param_visibilities": _as_dict,
    "resources": _as_dict,
    "scheduler_message_responses": _as_dict,
}


class _TaskBuilder:
    """Makes ``Task`` objects from stored attributes. Attributes an older file lacks get the
    defaults a new task has today (read off a template task, so they never drift)."""

    _FRESH = (set, dict, list, deque)  # mutable defaults: each task needs its own

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        template = Task("", PENDING, None, retry_policy=policy)
        self.defaults = [
            (name, getattr(template, name)) for name in Task.__slots__ if name not in ("id", "retry_policy")
        ]
        self._policies: dict[Any, RetryPolicy] = {}

    def __call__(self, key: str, fields: dict[str, Any]) -> Task:
        status = fields.get("status")
        if status not in STATUSES:
            raise DamagedStateFile(f"task {key!r} has unknown status {status!r}")
        task = Task.__new__(Task)
        task.id = key
        for name, default in self.defaults:
            # derived slots (index bookkeeping, reply caches) are rebuilt, never taken from a file
            if name in fields and name not in Task.DERIVED:
                coerce = _TASK_COERCE.get(name)
                value = coerce(fields[name]) if coerce else fields[name]
            elif type(default) in self._FRESH:
                value = type(default)()
            else:
                value = default
            setattr(task, name, value)
        task.retry_policy = self._policy(fields.get("retry_policy"))
        if "public_params" not in fields or "hidden_params" not in fields:
            task.set_params(task.params)
        return task

    def _policy(self, value: Any) -> RetryPolicy:
        """A stored policy, its gaps (luigi allows None fields) filled from the config's."""
        if not isinstance(value, tuple) or len(value) != 3:
            return self.policy
        known = self._policies.get(value)
        if known is None:
            filled: list[Any] = [d if v is None else v for v, d in zip(value, self.policy, strict=True)]
            known = self._policies[value] = RetryPolicy(*filled)
        return known


def _worker_from(key: str, fields: dict[str, Any], by_record: dict[int, Task]) -> Worker:
    worker = Worker(key)
    for name in Worker.__slots__:
        if name in fields and name not in ("id", "tasks"):
            setattr(worker, name, fields[name])
    # tasks the worker may run, kept only when they are still part of the state
    worker.tasks = {by_record[id(t)] for t in fields.get("tasks") or () if id(t) in by_record}
    if not isinstance(worker.info, dict):
        worker.info = {}
    if not isinstance(worker.rpc_messages, list):
        worker.rpc_messages = []
    return worker


def _batchers_from(raw: Any) -> Batchers:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise DamagedStateFile("batchers must be a mapping")
    batchers: Batchers = {}
    for worker_id, families in raw.items():
        if not isinstance(families, dict):
            raise DamagedStateFile(f"batchers of worker {worker_id!r} must be a mapping")
        batchers[worker_id] = {}
        for family, entry in families.items():
            batched_args, max_batch_size = entry
            batchers[worker_id][family] = (batched_args, max_batch_size)
    return batchers


# --------------------------------------------------------------------------- loading


def load_into(state: State, path: str, journal: Journal | None = None) -> bool:
    """Fill ``state`` from ``path``. False (state empty) when there is no usable file: a
    damaged one is moved aside first. ``StateFileError`` when the file must not be touched
    (a newer luigid's) or cannot be read or moved at all. With ``journal``, tasks that
    became DONE after the snapshot was taken are DONE again (see ``replay_journal``)."""
    remove_stale_temporaries(path)
    if not os.path.exists(path):
        logger.info("No prior state file exists at %s. Starting with empty state", path)
        return False
    logger.info("Attempting to load state from %s", path)
    try:
        with open(path, "rb") as src:
            payload = src.read()
    except OSError as exc:
        raise StateFileError(f"cannot read state file {path}: {exc.strerror or exc}") from exc
    started = time.perf_counter()
    try:
        with gcpause.paused():
            policy = state.config.retry_policy()
            tasks, workers, batchers, generation = decode_with_generation(payload, policy)
            del payload
            state.restore(tasks, workers, batchers)
            # the records live as long as the server: keep the collector from walking them
            # (re-enabled with millions of new objects counted, its next pass would)
            gc.freeze()
    except DamagedStateFile as exc:
        aside = quarantine(path)
        logger.error(
            "State file %s is unusable (%s); moved it to %s and starting with empty state", path, exc, aside
        )
        return False
    except StateFileError as exc:
        raise StateFileError(f"state file {path}: {exc}") from exc
    logger.info(
        "Loaded %d tasks and %d workers from %s in %.2fs",
        len(tasks),
        len(workers),
        path,
        time.perf_counter() - started,
    )
    if journal is not None and generation is not None:
        journal.start_after(generation)
        replay_journal(state, journal, generation)
    return True


def replay_journal(state: State, journal: Journal, after: int) -> int:
    """Bring back what the journal says happened after generation ``after`` where losing it
    would make a worker run a task again: tasks last seen DONE become DONE (with their
    ``updated`` time as recorded, so ``stable_done_cooldown_secs`` still rejects stale PENDING
    re-adds), and tasks last seen RUNNING that the snapshot has PENDING or FAILED are RUNNING
    on their worker again, so no other worker is handed them while that one finishes. Other
    changes are left to the workers to repeat. Returns how many tasks changed."""
    latest: dict[str, tuple[str, float, str | None]] = {}
    for task_id, status, when, worker in journal.entries_after(after):
        latest[task_id] = (status, when, worker)
    replayed = 0
    for task_id, (status, when, worker) in latest.items():
        task = state.get_task(task_id)
        if task is None or task.status == status:
            continue
        if status == DONE:
            state.set_status(task, DONE)
        elif status == RUNNING and worker and task.status in (PENDING, FAILED):
            state.get_worker(worker)  # known, so it is pruned (and its task failed) if it never returns
            state.set_status(task, RUNNING)
            task.worker_running = worker
            task.resources_running = dict(task.resources)
            task.time_running = when
        else:
            continue
        task.updated = when
        task.encoded = None
        replayed += 1
    if latest:
        logger.info("Status journal: %d changes after the snapshot, %d tasks restored", len(latest), replayed)
    return replayed


def quarantine(path: str) -> str:
    """Rename a damaged state file to ``<path>.corrupt-<timestamp>`` (never over another one)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = f"{path}.corrupt-{stamp}"
    suffix = 0
    while os.path.exists(aside):
        suffix += 1
        aside = f"{path}.corrupt-{stamp}-{suffix}"
    try:
        os.rename(path, aside)
    except OSError as exc:
        raise StateFileError(
            f"state file {path} is damaged and could not be moved aside: {exc.strerror or exc}"
        ) from exc
    return aside


def check_writable(path: str) -> str | None:
    """Why the state could not be saved at ``path``, or None when it can."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"{probe} is not a directory"
    if probe != folder:
        if not os.access(probe, os.W_OK | os.X_OK):
            return f"cannot create {folder}: {probe} is not writable"
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    if os.path.isdir(path):
        return f"{path} is a directory"
    if os.path.exists(path) and not os.access(path, os.R_OK):
        return f"{path} is not readable"
    return None


# --------------------------------------------------------------------------- writing


def save_state(state: State, path: str, journal: Journal | None = None) -> None:
    """Write the whole state; the journal files it now covers are deleted afterwards."""
    started = time.perf_counter()
    generation = journal.rotate() if journal is not None else None
    write_atomically(path, encode(state, generation))
    if journal is not None and generation is not None:
        journal.discard_through(generation)
    logger.info("Saved state in %s (%.2fs)", path, time.perf_counter() - started)


def temporary_path(path: str, pid: int) -> str:
    """Where process ``pid`` writes the next version of ``path`` before renaming it."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{pid}.tmp")


def remove_stale_temporaries(path: str) -> None:
    """Half-written snapshots of a killed process are useless; the real file is intact."""
    folder, name = os.path.split(os.path.abspath(path))
    for leftover in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(leftover)


def write_atomically(path: str, payload: bytes, proceed: Callable[[], bool] | None = None) -> None:
    """Write, fsync, rename. ``proceed`` is asked just before the rename (a snapshot child
    checks that its parent still lives, so a stale snapshot never replaces a newer one)."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = temporary_path(path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        if proceed is not None and not proceed():
            raise StateFileError("abandoned: the server that asked for it has gone")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ------------------------------------------------------------------------- snapshots


class Snapshotter:
    """Takes a snapshot every ``interval`` seconds while the server runs.

    ``tick()`` is called on the event loop (often, it is cheap): it reaps a finished
    snapshot child without blocking and starts the next one when due. With ``fork`` the
    loop pauses only for ``fork()`` itself; without it (or where fork is missing) the
    snapshot is written inline.
    """

    def __init__(
        self, state: State, path: str, interval: float, fork: bool = True, journal: Journal | None = None
    ) -> None:
        self.state = state
        self.path = path
        self.interval = interval
        self.fork = fork and hasattr(os, "fork")
        #: status changes after each snapshot; its files are deleted once a snapshot covers them
        self.journal = journal
        # pid, pipe to read, start time, journal generation covered
        self._child: tuple[int, int, float, int | None] | None = None
        self._last = time.monotonic()
        #: outcome of the most recent snapshot: None (none yet), "" (saved) or the error
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    @property
    def tick_ms(self) -> float:
        return max(50.0, min(self.interval, 1.0) * 1000)

    @property
    def writing(self) -> bool:
        """A snapshot child is still at work."""
        return self._child is not None

    def tick(self, hold: bool = False) -> None:
        """``hold``: a snapshot is due but must wait (the server holds it during a prune
        round: with a child alive, every page the round frees is copied first)."""
        self._reap(block=False)
        if self._child is None and not hold and time.monotonic() - self._last >= self.interval:
            self.take()

    def take(self) -> None:
        self._last = time.monotonic()
        if not self.fork:
            try:
                save_state(self.state, self.path, self.journal)
                self.last_error = ""
            except Exception as exc:
                self._failed(str(exc))
            return
        generation = self.journal.rotate() if self.journal is not None else None
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which leaves through os._exit
            os.close(read_end)
            _snapshot_child(self.state, self.path, write_end, parent, generation)
        os.close(write_end)
        self._child = (pid, read_end, time.monotonic(), generation)

    def stop(self) -> None:
        """Before the final save: a snapshot still being written is older, so drop it."""
        if self._child is None:
            return
        pid = self._child[0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._reap(block=True)
        with contextlib.suppress(OSError):
            os.unlink(temporary_path(self.path, pid))

    def _reap(self, block: bool) -> None:
        if self._child is None:
            return
        pid, read_end, started, generation = self._child
        try:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1 << 8
        if done == 0:
            return
        self._child = None
        with os.fdopen(read_end, "rb") as pipe:
            report = pipe.read().decode("utf-8", "replace").strip()
        if os.waitstatus_to_exitcode(status) == 0 and report == "ok":
            self.last_error = ""
            logger.debug("Snapshot saved in %s (%.2fs)", self.path, time.monotonic() - started)
            self._saved(generation)
        elif not block:
            self._failed(report or f"snapshot process ended with status {os.waitstatus_to_exitcode(status)}")

    def _saved(self, generation: int | None) -> None:
        if self.journal is not None and generation is not None:
            self.journal.discard_through(generation)

    def _failed(self, reason: str) -> None:
        self.last_error = reason
        logger.warning("Could not save a snapshot of the state in %s: %s", self.path, reason)


def _snapshot_child(  # pragma: no cover
    state: State, path: str, report_fd: int, parent: int, generation: int | None
) -> None:
    """Body of the forked snapshot process: write one snapshot, report, leave."""
    code = 1
    try:
        gc.disable()  # a collection would also touch (and so copy) every page shared with the parent
        # drop inherited sockets: a connection the server closes must not stay open in here
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, _max_fd())
        signal.set_wakeup_fd(-1)  # the parent's event loop must not hear this process's signals
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() != parent:
            raise StateFileError("abandoned: the server that asked for it has gone")
        write_atomically(path, encode(state, generation), proceed=lambda: os.getppid() == parent)
        os.write(report_fd, b"ok")
        code = 0
    except BaseException as exc:
        with contextlib.suppress(Exception):
            os.write(report_fd, " ".join(str(exc).split()).encode()[:2000] or type(exc).__name__.encode())
    finally:
        os._exit(code)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


def _die_with_parent() -> None:
    """On Linux, ask to be killed if the server dies (kill -9) while this snapshot is written."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
