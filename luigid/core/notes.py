"""What running tasks and the scheduler tell each other besides status: a task's status
message and progress (set by the worker running it, read by the UI), and the messages an
admin sends to a task through its worker, with the answers the task posts back."""

from __future__ import annotations

from typing import Any

from luigid.config import SchedulerConfig
from luigid.core import clock
from luigid.core.model import RUNNING
from luigid.core.state import State


class TaskNotes:
    def __init__(self, state: State, config: SchedulerConfig) -> None:
        self._state = state
        self._config = config

    def set(self, task_id: str, **field: Any) -> None:
        """Set a field on the task and, while it runs as part of a batch, on every member of
        the batch (luigi reports a batch's progress on its members too)."""
        task = self._state.get_task(task_id)
        if task is None:
            return
        task.set(**field)
        if task.status == RUNNING and task.batch_id is not None:
            for member in self._state.batch_running_tasks(task.batch_id):
                member.set(**field)

    def status_message(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        return {"taskId": task_id, "statusMessage": task.status_message if task is not None else ""}

    def progress(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        return {
            "taskId": task_id,
            "progressPercentage": task.progress_percentage if task is not None else None,
        }

    def send(self, worker: str, task: str, content: Any) -> dict[str, Any]:
        """Queue a message for a task on its worker's next ping (when messages are enabled)."""
        if not self._config.send_messages:
            return {"message_id": None}
        message_id = clock.new_id()
        self._state.get_worker(worker).add_rpc_message(
            "dispatch_scheduler_message", task_id=task, message_id=message_id, content=content
        )
        return {"message_id": message_id}

    def answer(self, task_id: str, message_id: str, response: Any) -> None:
        task = self._state.get_task(task_id)
        if task is not None:
            if not task.scheduler_message_responses:  # NOTHING, or an empty dict a state file shared
                task.scheduler_message_responses = {}
            task.scheduler_message_responses[message_id] = response

    def take_answer(self, task_id: str, message_id: str) -> dict[str, Any]:
        """The answer to a message, handed out once."""
        task = self._state.get_task(task_id)
        response = task.scheduler_message_responses.pop(message_id, None) if task is not None else None
        return {"response": response}
