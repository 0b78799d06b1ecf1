"""Choosing work: which task get_work hands a worker (or which batch), and the counts
count_pending reports, read from the ready lists instead of luigi's scan of every task."""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

from luigid.config import SchedulerConfig
from luigid.core import clock
from luigid.core.indexes import rank_key
from luigid.core.model import BATCH_RUNNING, DISABLED, DONE, PENDING, RUNNING, Task, Worker
from luigid.core.ports import Metrics, TaskHistory, tell_history
from luigid.core.resources import ResourcePool
from luigid.core.state import State

_first = itemgetter(0)


def _rank(task: Task) -> tuple[float, float]:
    return task.priority, -task.time


class Dispatcher:
    def __init__(
        self,
        state: State,
        resources: ResourcePool,
        config: SchedulerConfig,
        metrics: Metrics,
        history: TaskHistory,
    ) -> None:
        self._state = state
        self._resources = resources
        self._config = config
        self._metrics = metrics
        self._history = history

    def attach(self, metrics: Metrics, history: TaskHistory) -> None:
        """Swap the collaborators told of changes (muted during a replay)."""
        self._metrics = metrics
        self._history = history

    # ------------------------------------------------------------ count_pending

    def count_pending(self, worker_id: str) -> dict[str, Any]:
        state = self._state
        worker_rec = state.get_worker(worker_id)
        running_tasks = []
        # a RUNNING task is never UPSTREAM_DISABLED, so none is left out here
        for task in [t for t in state.tasks_in(RUNNING) if worker_id in t.workers]:
            other = state.get_worker(task.worker_running) if task.worker_running else None
            if other is not None:
                info = {"task_id": task.id, "worker": str(other)}
                info.update(other.info)
                running_tasks.append(info)

        load = state.load_of(worker_id)
        n_pending = load.pending + load.failed
        n_unique = load.pending_unique + load.failed_unique
        n_last = load.pending_last + load.failed_last
        for task_id in self.upstream_disabled():
            blocked = state.get_task(task_id)
            if blocked is not None and worker_id in blocked.workers:
                n_pending -= 1
                n_unique -= len(blocked.workers) == 1
                n_last -= next(reversed(blocked.workers)) == worker_id
        return {
            "n_pending_tasks": n_pending,
            "n_unique_pending": n_unique,
            "n_pending_last_scheduled": n_last,
            "worker_state": worker_rec.state,
            "running_tasks": running_tasks,
        }

    def upstream_disabled(self) -> set[str]:
        """PENDING tasks that luigi reports as UPSTREAM_DISABLED: those reaching a DISABLED
        task through PENDING tasks only. Costs what it finds (nothing without disables)."""
        state = self._state
        found: set[str] = set()
        if not state.count(DISABLED):
            return found
        stack = [t.id for t in state.tasks_by_status(DISABLED)]
        while stack:
            for user_id in state.dependents(stack.pop()):
                if user_id not in found:
                    user = state.get_task(user_id)
                    if user is not None and user.status == PENDING:
                        found.add(user_id)
                        stack.append(user_id)
        return found

    # ----------------------------------------------------------------- get_work

    def get_work(
        self, worker_id: str, host: str | None, assistant: bool, current_tasks: list[str] | None, paused: bool
    ) -> dict[str, Any]:
        """Hand the asking worker its best runnable task (or a batch of them)."""
        state = self._state
        worker_rec = state.get_worker(worker_id)
        worker_rec.update({"host": host}, get_work=True)
        if not worker_rec.enabled:
            return {
                "n_pending_tasks": 0,
                "running_tasks": [],
                "task_id": None,
                "n_unique_pending": 0,
                "worker_state": worker_rec.state,
            }
        if assistant:
            worker_rec.add_info({"assistant": assistant})

        best: Task | None = None
        batched_params: dict[str, list[Any]] | None = None
        unbatched_params: dict[str, Any] = {}
        batch: list[Task] = []
        max_batch_size: float = 1

        if current_tasks is not None:
            claimed = set(current_tasks)
            # a task we think this worker runs but it doesn't know about: hand it out again,
            # the last of them in luigi's rank order. Every worker of a fleet is running one,
            # so the RUNNING tasks are filtered before they are ranked: a stable sort of the
            # few left ends on the same task as luigi's sort of them all.
            forgotten = [
                t for t in state.tasks_in(RUNNING) if t.worker_running == worker_id and t.id not in claimed
            ]
            if forgotten:
                best = sorted(forgotten, key=_rank)[-1]
            self._reset_orphaned_batch_running_tasks(worker_id)

        pool = self._resources
        greedy_resources: defaultdict[str, int] = defaultdict(int)
        used_resources: defaultdict[str, int] = defaultdict(int)
        greedy_workers: dict[str, int] = {}
        trivial = self._is_trivial_worker(worker_rec)
        if not trivial:
            used_resources = pool.used(state.tasks_by_status(RUNNING))
            since = clock.now() - self._config.worker_disconnect_delay
            greedy_workers = {
                w.id: w.info.get("workers", 1) for w in state.active_workers(last_get_work_gt=since)
            }
        scan = (
            self._candidates(worker_id, assistant, trivial, greedy_workers)
            if best is None and not paused
            else iter(())
        )
        for task in scan:
            if task.status == RUNNING and task.worker_running in greedy_workers:
                greedy_workers[task.worker_running] -= 1
                held = task.resources_running if task.resources_running is not None else task.resources
                for name, amount in (held or {}).items():
                    greedy_resources[name] += amount

            if not (self._schedulable(task) and pool.has(task.resources, greedy_resources)):
                continue
            eligible = (assistant and task.runnable) or worker_id in task.workers
            if eligible and pool.has(task.resources, used_resources):
                best = task
                names, max_batch_size = state.get_batcher(worker_id, task.family)
                if names and task.is_batchable():
                    try:
                        batched_params = {name: [task.params[name]] for name in names}
                    except KeyError:
                        batched_params = None
                    else:
                        unbatched_params = {k: v for k, v in task.params.items() if k not in batched_params}
                        batch.append(task)
                break
            else:
                # reserve what the workers able to run it would claim, so a busy low-priority
                # worker cannot starve them
                runners = itertools.chain(task.workers, [worker_id]) if assistant else task.workers
                for runner in runners:
                    if greedy_workers.get(runner, 0) > 0:
                        greedy_workers[runner] -= 1
                        for name, amount in (task.resources or {}).items():
                            greedy_resources[name] += amount
                        break

        if best is not None and batched_params and best.ready_key is not None:
            # luigi batches later ready tasks alike in all but the batched parameters
            source = state.ready_tasks(worker_id if trivial else None, after=best.ready_key)
            for task in source:
                if len(batch) >= max_batch_size:
                    break
                if (
                    task.family == best.family
                    and task.is_batchable()
                    and all(task.params.get(k) == v for k, v in unbatched_params.items())
                    and task.resources == best.resources
                ):
                    for name, values in batched_params.items():
                        values.append(task.params.get(name))
                    batch.append(task)

        reply = self.count_pending(worker_id)
        if len(batch) > 1 and best is not None and batched_params is not None:
            batch_id = hashlib.md5(
                "|".join(t.id for t in batch).encode("utf-8"), usedforsecurity=False
            ).hexdigest()
            for task in batch:
                state.set_batch_running(task, batch_id, worker_id)
            params = dict(best.params)
            params.update(batched_params)
            reply.update(
                task_id=None,
                task_family=best.family,
                task_module=best.module,
                task_params=params,
                batch_id=batch_id,
                batch_task_ids=[t.id for t in batch],
            )
        elif best is not None:
            self._metrics.handle_task_started(best)
            # who runs it is set first, so the status journal records it with the change
            best.set(
                worker_running=worker_id, resources_running=dict(best.resources), time_running=clock.now()
            )
            state.set_status(best, RUNNING)
            tell_history(self._history, best, RUNNING, host=host)
            reply.update(
                task_id=best.id, task_family=best.family, task_module=best.module, task_params=best.params
            )
        else:
            reply["task_id"] = None
        return reply

    def _schedulable(self, task: Task) -> bool:
        if task.status != PENDING:
            return False
        get_task = self._state.get_task
        for dep_id in task.deps:
            dep = get_task(dep_id)
            if dep is None or dep.status != DONE:
                return False
        return True

    def _is_trivial_worker(self, worker: Worker) -> bool:
        """A non-assistant whose pending tasks need no resources can skip the global view."""
        return not worker.assistant and self._state.load_of(worker.id).pending_res == 0

    def _reset_orphaned_batch_running_tasks(self, worker_id: str) -> None:
        state = self._state
        batched = [t for t in state.tasks_in(BATCH_RUNNING) if t.worker_running == worker_id]
        if not batched:
            return  # the common case: no scan of the RUNNING tasks
        live_batches = {t.batch_id for t in state.tasks_by_status(RUNNING) if t.worker_running == worker_id}
        orphans = [t for t in batched if t.batch_id not in live_batches]
        for task in orphans:
            state.set_status(task, PENDING)

    def _candidates(
        self, worker_id: str, assistant: bool, trivial: bool, greedy_workers: dict[str, int]
    ) -> Iterator[Task]:
        """The tasks luigi's get_work loop would look at, in its order, less the ones that
        provably change nothing: a ready task that this worker cannot run and none of whose
        runners has reservations left. luigi scans every PENDING and RUNNING task; this walks
        the rank-sorted ready lists of the workers that still matter, merged."""
        state = self._state
        if trivial:
            # luigi looks only at this worker's own tasks here, and its RUNNING ones are inert
            yield from state.ready_tasks(worker_id)
            return
        running = sorted(((rank_key(t, running=True), t) for t in state.tasks_by_status(RUNNING)), key=_first)
        if assistant:  # an assistant may run any runnable task: the whole list it is
            ready = ((t.ready_key, t) for t in state.ready_tasks())
            for _, task in heapq.merge(ready, running, key=_first):
                yield task
            return
        # Once another worker's reservations run out, its remaining ready tasks are no-ops for
        # the caller's loop: a task it shares with a worker that still has some is also in that
        # worker's list, and one the caller may run is in the caller's. So a stream is dropped
        # from the merge the moment its worker has nothing left to reserve. Walking past the
        # no-ops instead cost thousands of steps when one worker's tasks all rank ahead of the
        # caller's (a worker that scheduled its graph first); re-merging instead was quadratic
        # in busy workers. ``owner`` None marks the streams never dropped.
        live = [w for w, left in greedy_workers.items() if left > 0 and w != worker_id]
        streams: list[tuple[str | None, Iterator[tuple[Any, Task]]]] = [
            (None, ((t.ready_key, t) for t in state.ready_tasks(worker_id))),
            *((w, ((t.ready_key, t) for t in state.ready_tasks(w))) for w in live),
            (None, iter(running)),
        ]
        heap: list[tuple[Any, int, Task, Iterator[tuple[Any, Task]], str | None]] = []
        for number, (owner, stream) in enumerate(streams):
            head = next(stream, None)
            if head is not None:
                heap.append((head[0], number, head[1], stream, owner))
        heapq.heapify(heap)
        previous = None
        while heap:
            key, number, task, stream, owner = heap[0]
            if owner is not None and greedy_workers.get(owner, 0) <= 0:
                heapq.heappop(heap)
                continue
            if key != previous:  # else listed by several workers, and already seen
                previous = key
                yield task
            head = next(stream, None)
            if head is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (head[0], number, head[1], stream, owner))
