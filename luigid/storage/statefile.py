"""The state file on disk: loading it safely and saving it so it is never torn.

* **Loading** (``load_into``) decodes the file (``luigid.storage.codec``) into the state. A
  file that cannot be read is renamed to ``<path>.corrupt-<timestamp>`` (never overwritten),
  the reason is logged and the scheduler starts empty; a newer luigid's file is never
  touched (``StateFileError``). With a journal, the status changes recorded after the
  snapshot are replayed on top of it (``replay_journal``).
* **Saving** (``save_state``) goes through ``luigid.storage.files.write_atomically``, so a
  crash at any moment leaves one complete snapshot on disk. Each snapshot records the
  journal generation it covers, and the journal files it covers are deleted once it is on
  disk. Periodic snapshots while serving are ``luigid.storage.snapshots``'s.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Protocol

from luigid.core import gcpause
from luigid.core.model import DONE, FAILED, PENDING, RUNNING
from luigid.core.state import State
from luigid.storage.codec import DamagedStateFile, StateFileError, decode_all, encode_into
from luigid.storage.files import remove_stale_temporaries, write_atomically
from luigid.storage.journal import Journal

logger = logging.getLogger("luigi.server")

__all__ = [
    "DamagedStateFile",
    "StateFileError",
    "check_writable",
    "load_into",
    "load_snapshot",
    "quarantine",
    "replay_journal",
    "restore_payload",
    "save_state",
]


# --------------------------------------------------------------------------- loading


class Generations(Protocol):
    """A log whose generations a snapshot covers (the change log, or the status journal)."""

    def rotate(self) -> int: ...

    def discard_through(self, gen: int) -> None: ...


def load_into(state: State, path: str, journal: Journal | None = None) -> bool:
    """Fill ``state`` from ``path``. False (state empty) when there is no usable file: a
    damaged one is moved aside first. ``StateFileError`` when the file must not be touched
    (a newer luigid's) or cannot be read or moved at all. With ``journal``, tasks that
    became DONE after the snapshot was taken are DONE again (see ``replay_journal``)."""
    return load_snapshot(state, path, journal)[0]


def load_snapshot(state: State, path: str, journal: Journal | None = None) -> tuple[bool, int | None]:
    """``load_into``, plus the last log generation the file covers (None: it does not say,
    or there was no usable file)."""
    remove_stale_temporaries(path)
    if not os.path.exists(path):
        logger.info("No prior state file exists at %s. Starting with empty state", path)
        return False, None
    logger.info("Attempting to load state from %s", path)
    try:
        with open(path, "rb") as src:
            payload = src.read()
    except OSError as exc:
        raise StateFileError(f"cannot read state file {path}: {exc.strerror or exc}") from exc
    started = time.perf_counter()
    try:
        tasks, workers, generation = restore_payload(state, payload)
        del payload
    except DamagedStateFile as exc:
        aside = quarantine(path)
        logger.error(
            "State file %s is unusable (%s); moved it to %s and starting with empty state", path, exc, aside
        )
        return False, None
    except StateFileError as exc:
        raise StateFileError(f"state file {path}: {exc}") from exc
    logger.info(
        "Loaded %d tasks and %d workers from %s in %.2fs",
        tasks,
        workers,
        path,
        time.perf_counter() - started,
    )
    if journal is not None and generation is not None:
        journal.start_after(generation)
        replay_journal(state, journal, generation)
    return True, generation


def restore_payload(state: State, payload: bytes) -> tuple[int, int, int | None]:
    """Fill ``state`` from a state file's bytes; (tasks, workers, log generation covered).
    Raises ``DamagedStateFile`` or ``StateFileError`` as ``codec`` does."""
    with gcpause.paused():
        policy = state.config.retry_policy()
        tasks, workers, batchers, generation, settings = decode_all(payload, policy)
        state.restore(tasks, workers, batchers)
        state.paused = bool(settings.get("paused", False))
        state.resource_overrides = dict(settings.get("resource_overrides", {}))
        if "prune_queue" in settings:
            state.queue.restore_saved(settings["prune_queue"])
        # the records live as long as the server: keep the collector from walking them
        # (re-enabled with millions of new objects counted, its next pass would)
        gc.freeze()
    return len(tasks), len(workers), generation


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
            task.set(worker_running=worker, resources_running=dict(task.resources), time_running=when)
        else:
            continue
        task.set(updated=when)
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


# --------------------------------------------------------------------------- saving


def save_state(state: State, path: str, journal: Generations | None = None) -> None:
    """Write the whole state; the log files it now covers are deleted afterwards."""
    started = time.perf_counter()
    generation = journal.rotate() if journal is not None else None
    write_atomically(path, lambda out: encode_into(out, state, generation))
    if journal is not None and generation is not None:
        journal.discard_through(generation)
    logger.info("Saved state in %s (%.2fs)", path, time.perf_counter() - started)
