"""The smaller read-only replies the UI asks for: workers, resources, a task search, a
task's error. Each is built whole (none is big enough to stream)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from luigid.core import gcpause
from luigid.core.model import RUNNING, Worker
from luigid.core.replies import Replies
from luigid.core.resources import ResourcePool
from luigid.core.state import State


class Listings:
    def __init__(self, state: State, replies: Replies, resources: ResourcePool) -> None:
        self._state = state
        self._replies = replies
        self._resources = resources

    def resource_list(self) -> list[dict[str, Any]]:
        """Each resource's usage and the running tasks holding it."""
        state = self._state
        listing: list[dict[str, Any]] = [
            {"name": name, "num_total": r["total"], "num_used": r["used"]}
            for name, r in self._resources.usage(state.tasks_by_status(RUNNING)).items()
        ]
        holders: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        for task in state.tasks_by_status(RUNNING):
            for name in task.resources or {}:
                holders[name][task.id] = self._replies.serialize_task(task, include_deps=False)
        for entry in listing:
            running = holders[entry["name"]]
            entry["num_consumer"] = len(running)
            entry["running"] = running
        return listing

    def task_search(self, task_str: str) -> dict[str, Any]:
        found: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        serialize = self._replies.serialize_task
        with gcpause.paused():
            for task in self._state.tasks():
                if task_str in task.id:
                    found[task.status][task.id] = serialize(task, include_deps=False)
        return dict(found)  # a plain dict for in-process callers (pickle, json, ==)

    def _first_task_display_name(self, worker: Worker) -> str:
        task_id = worker.info.get("first_task", "")
        task = self._state.get_task(task_id) if isinstance(task_id, str) else None
        return task.pretty_id if task is not None else task_id

    def worker_list(self, include_running: bool) -> list[dict[str, Any]]:
        state = self._state
        listing = []
        for worker in state.workers():
            entry = dict(worker.info)
            entry.update(
                name=worker.id,
                last_active=worker.last_active,
                started=worker.started,
                state=worker.state,
                first_task_display_name=self._first_task_display_name(worker),
                num_unread_rpc_messages=len(worker.rpc_messages),
            )
            listing.append(entry)
        listing.sort(key=lambda entry: entry["started"], reverse=True)
        if include_running:
            running: defaultdict[str, dict[str, Any]] = defaultdict(dict)
            for task in state.tasks_by_status(RUNNING):
                if task.worker_running:
                    running[task.worker_running][task.id] = self._replies.serialize_task(
                        task, include_deps=False
                    )
            for entry in listing:
                tasks = running[entry["name"]]
                load = state.load_of(entry["name"])
                entry["num_running"] = len(tasks)
                entry["num_pending"] = load.pending
                entry["num_uniques"] = load.pending_unique
                entry["running"] = tasks
        return listing

    def fetch_error(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        if task is None:
            return {"taskId": task_id, "error": ""}
        return {
            "taskId": task_id,
            "error": task.expl,
            "displayName": task.pretty_id,
            "taskParams": task.params,
            "taskModule": task.module,
            "taskFamily": task.family,
        }
