"""The state file's format: a snapshot of the scheduler state to bytes and back.

* A pickled dict ``{"format": "luigid-state", "version": N, ...}`` holding only plain
  builtins. Version 2 stores each task as a row (a tuple of its attributes in the order
  ``task_fields`` names) and each worker likewise: rows load at C speed and become ``Task``
  objects in one assignment each, which is what makes a restart fast (figures in
  docs/operations.md, "Format versions"). From version 3 the task rows follow the dict,
  ``task_chunks`` more pickles of ``(rows, seqs)`` with up to ``CHUNK_TASKS`` tasks each: a
  pickler keeps every object it wrote until it ends, so one pickle of a million rows held
  a million row tuples and their memo entries at once in the snapshot child
  (docs/performance.md, "Memory per task").
* Older files are read too: version 1 (pickled ``Task`` and ``Worker`` objects), luigid's
  first unversioned ``(tasks, workers, batchers)`` tuple, and the ``(tasks, workers[,
  batchers])`` tuple luigi 3.x's own luigid writes (its classes are mapped onto ours without
  importing luigi). Attributes a file lacks get the defaults a new task has today.
* Decoding goes through ``luigid.storage.safe_pickle``, which runs no code from the file;
  whatever cannot be read is a ``DamagedStateFile``, a file from a newer luigid a
  ``StateFileError``. What is written never changes for a given version: bump ``VERSION``
  and teach ``decode`` the old layout instead.
"""

from __future__ import annotations

import io
import operator
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any

from luigid.core import gcpause
from luigid.core.model import (
    EXTRA_DEFAULTS,
    NO_EXTRAS,
    NOTHING,
    PENDING,
    STATUSES,
    RetryPolicy,
    Task,
    TaskExtras,
    Worker,
    stays_default,
)
from luigid.core.state import Batcher, State
from luigid.storage import safe_pickle

FORMAT = "luigid-state"
#: Bump when the layout changes, and teach ``decode`` to read the previous one.
#: 1: pickled Task/Worker objects; 2: rows of plain values (``TASK_FIELDS``/``WORKER_FIELDS``);
#: 3: the same rows in chunks, stakeholders as a frozenset and deps and runners as tuples (what
#: tasks hold since version 3); a luigid that reads up to 2 refuses it as newer instead of
#: taking those for damage
VERSION = 3
#: Task rows per pickle after the header (version 3).
CHUNK_TASKS = 10_000

#: What a stored task row holds, in order: every attribute but those the state derives.
TASK_FIELDS: tuple[str, ...] = tuple(name for name in Task.FIELDS if name not in Task.DERIVED)
#: What a stored worker row holds; the tasks a worker may run are rebuilt from the tasks.
WORKER_FIELDS: tuple[str, ...] = tuple(name for name in Worker.__slots__ if name != "tasks")
_task_row = operator.attrgetter(*TASK_FIELDS)
_worker_row = operator.attrgetter(*WORKER_FIELDS)

Tasks = dict[str, Task]
Workers = dict[str, Worker]
Batchers = dict[str, dict[str, Batcher]]
#: what else the file keeps: "paused", "resource_overrides"
Settings = dict[str, Any]


class StateFileError(Exception):
    """The state file can neither be used nor set aside (one line for the operator)."""


class DamagedStateFile(Exception):
    """The file is not a readable luigid/luigi state; the message says why."""


# ---------------------------------------------------------------------------- writing


def encode(state: State, journal_generation: int | None = None) -> bytes:
    """``journal_generation``: the last status-journal generation this snapshot covers."""
    out = io.BytesIO()
    encode_into(out, state, journal_generation)
    return out.getvalue()


def encode_into(out: IO[bytes], state: State, journal_generation: int | None = None) -> None:
    """``encode``, written to ``out`` as it goes (a snapshot child never holds the whole file).
    Pickling allocates millions of small objects and none of them is garbage: the collector
    is paused, or it would chase them all (cost in docs/architecture.md, "State file")."""
    with gcpause.paused():
        _encode(out, state, journal_generation)


def _encode(out: IO[bytes], state: State, journal_generation: int | None) -> None:
    tasks, workers, batchers = state.snapshot()
    records = list(tasks.values())
    chunks = range(0, len(records), CHUNK_TASKS)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": time.time(),
        "task_fields": TASK_FIELDS,
        "task_chunks": len(chunks),
        "worker_fields": WORKER_FIELDS,
        "workers": list(map(_worker_row, workers.values())),
        "batchers": batchers,
    }
    if journal_generation is not None:
        document["journal_generation"] = journal_generation
    # what else the scheduler holds that a restart must keep (luigi's file has neither)
    if state.paused:
        document["paused"] = True
    if state.resource_overrides:
        document["resource_overrides"] = dict(state.resource_overrides)
    # as it is, stale timers included: the change log's replay runs on it (luigid.core.timers)
    document["prune_queue"] = state.queue.saved()
    pickle.dump(document, out, protocol=pickle.HIGHEST_PROTOCOL)
    for start in chunks:
        part = records[start : start + CHUNK_TASKS]
        # each task's place in the status order, which breaks ties in hand-out order: a
        # replay of the change log on the loaded state must hand out what the live state did
        rows = (list(map(_task_row, part)), [task.seq for task in part])
        pickle.dump(rows, out, protocol=pickle.HIGHEST_PROTOCOL)


# ---------------------------------------------------------------------------- reading


def decode(payload: bytes, policy: RetryPolicy) -> tuple[Tasks, Workers, Batchers]:
    """Read any state file luigid or luigi 3.x wrote. ``policy`` fills retry-policy gaps."""
    tasks, workers, batchers, _ = decode_with_generation(payload, policy)
    return tasks, workers, batchers


def decode_with_generation(
    payload: bytes, policy: RetryPolicy
) -> tuple[Tasks, Workers, Batchers, int | None]:
    """``decode``, plus the journal generation the file covers (None: a file from before
    journals, or luigi's, which no journal on disk can be trusted to follow)."""
    tasks, workers, batchers, generation, _ = decode_all(payload, policy)
    return tasks, workers, batchers, generation


def decode_all(payload: bytes, policy: RetryPolicy) -> tuple[Tasks, Workers, Batchers, int | None, Settings]:
    """``decode_with_generation``, plus the scheduler settings the file keeps: ``paused``
    (bool), ``resource_overrides`` (resource totals set over RPC) and ``prune_queue``
    (``PruneQueue.saved``, checked by ``PruneQueue.restore_saved``), when it has them."""
    with gcpause.paused():  # building the tasks allocates as much again as unpickling
        return _decode_all(payload, policy)


def _settings(document: dict[str, Any]) -> Settings:
    settings: Settings = {}
    if document.get("paused") is True:
        settings["paused"] = True
    overrides = document.get("resource_overrides")
    if isinstance(overrides, dict):
        settings["resource_overrides"] = {
            k: v for k, v in overrides.items() if isinstance(k, str) and isinstance(v, int)
        }
    if isinstance(document.get("prune_queue"), dict):
        settings["prune_queue"] = document["prune_queue"]
    return settings


def _decode_all(payload: bytes, policy: RetryPolicy) -> tuple[Tasks, Workers, Batchers, int | None, Settings]:
    generation: int | None = None
    settings: Settings = {}
    try:
        document = read_document(payload)
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
        settings = _settings(document)
        if version >= 2:
            try:
                return (*_from_rows(document, policy), generation, settings)
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
        return (*_convert(*raw, policy=policy), generation, settings)
    except DamagedStateFile:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise DamagedStateFile(f"inconsistent state records ({exc})") from exc


def read_document(payload: bytes) -> Any:
    """What the file holds, unchecked: a luigid file's document with its task rows (and
    ``task_seqs``) in it whatever the version, or whatever else the first pickle is."""
    stream = io.BytesIO(payload)
    document = safe_pickle.load(stream)
    if isinstance(document, dict) and document.get("format") == FORMAT:
        _read_chunks(document, stream)
    return document


def _read_chunks(document: dict[str, Any], stream: IO[bytes]) -> None:
    """Version 3: the task rows and their status order, from the pickles after the header."""
    chunks, version = document.pop("task_chunks", None), document.get("version")
    if chunks is None or type(version) is not int or not 3 <= version <= VERSION:
        return
    if type(chunks) is not int or chunks < 0:
        raise DamagedStateFile(f"task_chunks {chunks!r} is not a count")
    rows: list[Any] = []
    seqs: list[Any] = []
    for _ in range(chunks):
        part = safe_pickle.load(stream)
        if not (type(part) is tuple and len(part) == 2 and type(part[0]) is list and type(part[1]) is list):
            raise DamagedStateFile("malformed chunk of task rows")
        rows.extend(part[0])
        seqs.extend(part[1])
    document["tasks"] = rows
    document["task_seqs"] = seqs


def _row_loader(fields: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Task]:
    """A function making a ``Task`` from a row of ``fields``: one unpacking assignment per
    row instead of a ``setattr`` per attribute (see docs/architecture.md, "State file"). Its
    source is generated from the field names (as ``dataclasses`` generates ``__init__``), so it
    cannot drift from ``TASK_FIELDS``; derived slots get a new task's values. The extra fields
    (``EXTRA_DEFAULTS``) are unpacked into locals: a task whose extras all hold their defaults
    (an empty mapping counts as one: the file keeps no shared objects) shares ``NO_EXTRAS``,
    any other gets a record of its own, without a property write per field."""
    template = Task("", PENDING, None, retry_policy=RetryPolicy(0, 0, 0))
    derived = {f"_{name}": getattr(template, name) for name in sorted(Task.DERIVED)}
    if not all(name in Task.FIELDS and name.isidentifier() for name in fields):
        raise ValueError(f"not task attributes: {fields!r}")
    extras = [name for name in fields if name in EXTRA_DEFAULTS]
    defaults = {f"_d_{name}": EXTRA_DEFAULTS[name] for name in extras}

    def target(name: str) -> str:
        return f"x_{name}" if name in EXTRA_DEFAULTS else f"task.{name}"

    def at_default(name: str) -> str:  # ``stays_default``, inlined
        default = EXTRA_DEFAULTS[name]
        return f"not x_{name}" if default is NOTHING else f"x_{name} is _d_{name}"

    source = "\n".join(
        [
            "def load_task(row, _new=Task.__new__, _Task=Task, _Extras=TaskExtras, _shared=NO_EXTRAS, "
            f"{', '.join(f'{k}={k}' for k in (*derived, *defaults))}):",
            "    task = _new(_Task)",
            f"    ({''.join(f'{target(name)}, ' for name in fields)}) = row",
            *(f"    task.{name[1:]} = {name}" for name in derived),
            f"    if {' and '.join(at_default(name) for name in extras) or 'True'}:",
            "        task.extras = _shared",
            "    else:",
            "        extras = task.extras = _Extras()",
            *(f"        extras.{name} = x_{name}" for name in extras),
            "    return task",
        ]
    )
    namespace: dict[str, Any] = {
        "Task": Task,
        "TaskExtras": TaskExtras,
        "NO_EXTRAS": NO_EXTRAS,
        **derived,
        **defaults,
    }
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


#: what a row's stakeholders may be (2: a set, 3: a frozenset), its deps (2: a set, 3: a
#: tuple) and its runners (2: an insertion-ordered dict, 3: a tuple); ``luigid.core.restore``
#: makes them what tasks hold
_ID_SETS = (set, frozenset)
_DEPS = (set, tuple)
_RUNNERS = (dict, tuple)


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
                or type(task.deps) not in _DEPS
                or type(task.stakeholders) not in _ID_SETS
                or type(task.workers) not in _RUNNERS
            ):
                raise DamagedStateFile(f"task {task.id!r} has malformed attributes")
            tasks[task.id] = task
    else:
        # another layout (an older or newer luigid's): attribute by attribute, with defaults
        build = _TaskBuilder(policy)
        tasks = {key: build(key, named) for key, named in _by_name(task_fields, rows, "task")}
    seqs = document.get("task_seqs")
    if isinstance(seqs, list) and len(seqs) == len(tasks) and all(type(n) is int and n > 0 for n in seqs):
        for task, number in zip(tasks.values(), seqs, strict=True):
            task.seq = number
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


def _ordered_ids(value: Any) -> tuple[str, ...]:
    """luigi keeps a task's runners in an OrderedSet, luigid in a tuple (in an
    insertion-ordered dict up to format version 2)."""
    if isinstance(value, safe_pickle.OrderedSetRecord):
        value = value.items()
    return tuple(dict.fromkeys(value or ()))


def _as_set(value: Any) -> frozenset[Any]:
    return value if type(value) is frozenset else frozenset(value or ())


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
            (name, getattr(template, name))
            for name in Task.FIELDS
            if name not in ("id", "retry_policy") and name not in EXTRA_DEFAULTS
        ]
        self._policies: dict[Any, RetryPolicy] = {}

    def __call__(self, key: str, fields: dict[str, Any]) -> Task:
        status = fields.get("status")
        if status not in STATUSES:
            raise DamagedStateFile(f"task {key!r} has unknown status {status!r}")
        task = Task.__new__(Task)
        task.extras = NO_EXTRAS
        task.id = key
        for name in EXTRA_DEFAULTS:
            if name in fields:
                coerce = _TASK_COERCE.get(name)
                value = coerce(fields[name]) if coerce else fields[name]
                if not stays_default(name, value):
                    setattr(task, name, value)
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
