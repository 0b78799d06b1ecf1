"""Export luigid's state as the state file of luigi 3.x's own daemon (the way back).

luigi's ``SimpleTaskState.load`` unpickles ``(tasks, workers, batchers)``: dicts of
``luigi.scheduler.Task`` and ``luigi.scheduler.Worker`` objects by id, and
``{worker_id: {family: (batched_args, max_batch_size)}}``. After unpickling it only rebuilds
its index by status, so each object must carry every attribute luigi's own ``__init__``
sets, in luigi's types: ``workers`` an ``OrderedSet``, ``failures`` a deque,
``retry_policy`` its ``RetryPolicy`` namedtuple, each ``Worker.tasks`` a set of the very
``Task`` objects of the task dict. The records are written by module and class name
(``luigid.storage.luigi_pickle``): luigid never imports luigi.

Reading our file leaves it untouched: a damaged file is reported, not moved aside as the
daemon does at start, and the status journal is replayed into memory only.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Any

from luigid.config import SchedulerConfig
from luigid.core.model import Task, Worker
from luigid.core.scheduler import Scheduler
from luigid.core.state import Batcher, State
from luigid.storage.changelog import LocalChangeLog
from luigid.storage.changelog_format import NewerFormat, read_records
from luigid.storage.codec import DamagedStateFile, StateFileError, decode_with_generation
from luigid.storage.files import write_atomically
from luigid.storage.journal import Journal
from luigid.storage.luigi_pickle import Instance, LinkedOrderedSet, dumps
from luigid.storage.statefile import replay_journal

#: Where luigi 3.x defines the scheduler's records.
LUIGI_MODULE = "luigi.scheduler"


class ExportError(Exception):
    """The export cannot be done (one line for the operator)."""


@dataclass(frozen=True)
class ExportSummary:
    tasks: int
    workers: int


def luigi_task(task: Task) -> Instance:
    """``task`` as luigi's ``Task``: the attributes its ``__init__`` sets, in that order, plus
    ``resources_running`` once the task has run (luigi sets it only then and reads it with
    ``getattr``). Not exported: luigid's ``owners`` (used only while a failure e-mail is
    built) and the slots luigid derives for its indexes (``Task.DERIVED``)."""
    state: dict[str, Any] = {
        "id": task.id,
        "stakeholders": set(task.stakeholders),
        "workers": LinkedOrderedSet(LUIGI_MODULE, "OrderedSet", task.workers),
        "deps": set(task.deps),
        "status": task.status,
        "time": task.time,
        "updated": task.updated,
        "retry": task.retry,
        "remove": task.remove,
        "worker_running": task.worker_running,
        "time_running": task.time_running,
        "expl": task.expl,
        "priority": task.priority,
        "resources": task.resources,
        "family": task.family,
        "module": task.module,
        "param_visibilities": task.param_visibilities,
        "params": task.params,
        "public_params": task.public_params,
        "hidden_params": task.hidden_params,
        "accepts_messages": task.accepts_messages,
        "retry_policy": Instance(LUIGI_MODULE, "RetryPolicy", None, tuple(task.retry_policy)),
        # luigid keeps () until the first failure; luigi always has a deque
        "failures": deque(task.failures),
        "first_failure_time": task.first_failure_time,
        "tracking_url": task.tracking_url,
        "status_message": task.status_message,
        "progress_percentage": task.progress_percentage,
        "scheduler_message_responses": task.scheduler_message_responses,
        "scheduler_disable_time": task.scheduler_disable_time,
        "runnable": task.runnable,
        "batchable": task.batchable,
        "batch_id": task.batch_id,
    }
    if task.resources_running is not None:
        state["resources_running"] = task.resources_running
    return Instance(LUIGI_MODULE, "Task", state)


def luigi_worker(worker: Worker, tasks: dict[str, Instance]) -> Instance:
    """``worker`` as luigi's ``Worker``; ``tasks`` the exported task records by id, so the
    worker's task set holds the same objects as the task dict once luigi loads the file."""
    runnable = {tasks[task.id] for task in worker.tasks if task.id in tasks}
    state: dict[str, Any] = {
        "id": worker.id,
        "reference": worker.reference,
        "last_active": worker.last_active,
        "last_get_work": worker.last_get_work,
        "started": worker.started,
        "tasks": runnable,
        "info": worker.info,
        "disabled": worker.disabled,
        "rpc_messages": worker.rpc_messages,
    }
    return Instance(LUIGI_MODULE, "Worker", state)


def encode_for_luigi(
    tasks: dict[str, Task], workers: dict[str, Worker], batchers: dict[str, dict[str, Batcher]]
) -> bytes:
    """The bytes of a luigi 3.x state file holding these tasks, workers and batchers."""
    task_records = {task_id: luigi_task(task) for task_id, task in tasks.items()}
    worker_records = {worker_id: luigi_worker(worker, task_records) for worker_id, worker in workers.items()}
    luigi_batchers = {
        worker_id: {family: tuple(batcher) for family, batcher in families.items()}
        for worker_id, families in batchers.items()
    }
    return dumps((task_records, worker_records, luigi_batchers))


def read_state(path: str, config: SchedulerConfig) -> State:
    """The state luigid would start with from ``path`` and its status journal."""
    try:
        with open(path, "rb") as src:
            payload = src.read()
    except FileNotFoundError:
        raise ExportError(f"no state file at {path}") from None
    except OSError as exc:
        raise ExportError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    try:
        tasks, workers, batchers, generation = decode_with_generation(payload, config.retry_policy())
    except (DamagedStateFile, StateFileError) as exc:
        raise ExportError(f"state file {path} is unusable: {exc}") from None
    scheduler = Scheduler(config)  # bare: no collaborators, so the replay sends nothing
    state = scheduler.state
    state.restore(tasks, workers, batchers)
    if generation is not None:
        replay_journal(state, Journal(path), generation)
    # and the change log after it, only read (a damaged file stops the replay, moved nowhere)
    log = LocalChangeLog(path, "no")
    for number in log.generations():
        if generation is not None and number <= generation:
            continue
        try:
            with open(log.path(number), "rb") as src:
                contents = read_records(src.read())
        except (OSError, NewerFormat) as exc:
            raise ExportError(f"cannot read the change log {log.path(number)}: {exc}") from None
        for record in contents.records:
            scheduler.recorder.replay(scheduler, record.method, record.arguments, record.now, record.ids)
        if contents.damage is not None:
            break
    return state


def same_file(first: str, second: str) -> bool:
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def export_for_luigi(source: str, target: str, config: SchedulerConfig) -> ExportSummary:
    """Write ``target`` (atomically) as luigi's daemon's state file for the state at ``source``."""
    if same_file(source, target):
        raise ExportError(f"refusing to overwrite the luigid state file {source}: choose another output path")
    tasks, workers, batchers = read_state(source, config).snapshot()
    payload = encode_for_luigi(tasks, workers, batchers)
    try:
        write_atomically(target, payload)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None
    return ExportSummary(tasks=len(tasks), workers=len(workers))
