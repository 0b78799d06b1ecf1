"""Prune rounds: luigi's prune (workers that stopped talking are removed, running tasks of
gone workers fail, due timers and unstaked tasks are looked at), done a slice at a time.

After a fleet of workers stops, a round touches every task; done at once it held the
event loop longer than any other call (docs/performance.md, "Figures behind the code").
Between slices the state is consistent and RPCs run as usual. A round within the budget
(every unit test's) ends in one call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from itertools import islice

from luigid.config import SchedulerConfig
from luigid.core import clock, gcpause
from luigid.core.model import BATCH_RUNNING, RUNNING, Task
from luigid.core.ports import Metrics
from luigid.core.state import State

logger = logging.getLogger("luigi.server")

#: Tasks one prune step takes, and how many tasks' work one call to prune may do before
#: handing the event loop back: a call stays well under the stall budget (costs per task
#: in docs/performance.md). A count, not a clock, so that whether a small round ends in
#: one call never depends on how busy the machine is.
PRUNE_STEP = 1000
PRUNE_SLICE_TASKS = 1000


class Pruner:
    def __init__(
        self,
        state: State,
        config: SchedulerConfig,
        metrics: Metrics,
        round_done: Callable[[], None],
    ) -> None:
        self._state = state
        self._config = config
        self._metrics = metrics
        #: what else a finished round does (batched mail, history retention)
        self._round_done = round_done
        #: a prune round under way, resumed by the next call (see prune_slice)
        self._round: Iterator[int] | None = None
        self.step = PRUNE_STEP
        self.slice_tasks = PRUNE_SLICE_TASKS

    def attach(self, metrics: Metrics) -> None:
        """Swap the metrics collector (muted during a replay)."""
        self._metrics = metrics

    @property
    def pruning(self) -> bool:
        """A prune round is under way (some call left it unfinished)."""
        return self._round is not None

    def prune_slice(self, tasks: int | None = None) -> bool:
        """Go on with the prune round under way, or start one, until about ``tasks`` tasks'
        work is done (``slice_tasks`` by default); True when the round is not finished
        and another call should follow."""
        started = time.perf_counter()
        budget = self.slice_tasks if tasks is None else tasks
        if self._round is None:
            logger.debug("Starting pruning of task graph")
            self._round = self._round_steps()
        done = 0
        try:
            for worked in self._round:
                done += worked
                if done >= budget:
                    return True
        except BaseException:
            self._round = None
            raise
        finally:
            gcpause.collect_young()  # a slice replaces frozen objects: see collect_young
            self._metrics.observe_prune(time.perf_counter() - started)
        self._round = None
        logger.debug("Done pruning task graph")
        return False

    def _round_steps(self) -> Iterator[int]:
        """One prune round, yielding after each step how many tasks it worked on."""
        state = self._state
        step = self.step
        self._prune_workers()
        # Before the first pause: a task still RUNNING under a removed worker would let a
        # get_work or count_pending naming that worker bring it back meanwhile.
        assistants = state.assistant_ids()
        running = list(state.tasks_by_status(RUNNING, BATCH_RUNNING))
        for task in running:
            state.rules.fail_dead_worker_task(task, assistants)
        yield len(running)
        while state.settle_departures(step):
            yield step
        # A task looked at and left is queued again at once when its timers are all still to
        # come. One with a timer already due that changed nothing is kept until the round's
        # end, or it would be taken again and again. (Keeping every one till then meant a
        # dict of every task after a fleet departed: 20-30 ms to grow, and to free, at 1M.)
        kept: dict[str, Task] = {}
        while state.has_prune_work(clock.now()):
            work, taken = state.take_prune_work(clock.now(), step)  # stale timers count too
            expired = []
            for task in work:
                state.update_status(task)
                if state.may_prune(task):
                    logger.info("Removing task %r", task.id)
                    expired.append(task.id)
                    # kept earlier in the round? Let go of it now: holding the last reference
                    # to every removed task freed them all at the round's end, in one stall
                    kept.pop(task.id, None)
                elif state.timers_to_come(task, clock.now()):
                    state.reschedule(task)
                else:
                    kept[task.id] = task
            state.remove_tasks(expired)
            yield taken
        later = iter(kept.values())  # nothing changes ``kept`` from here on
        while chunk := list(islice(later, step)):
            for task in chunk:
                if state.get_task(task.id) is task:  # not removed (and re-added) meanwhile
                    state.reschedule(task)
            yield len(chunk)
        self._round_done()

    def _prune_workers(self) -> None:
        state = self._state
        delay = self._config.worker_disconnect_delay
        deadline = clock.now() - delay
        gone = [w.id for w in state.workers() if w.last_active < deadline]
        for worker_id in gone:
            logger.debug("Worker %s timed out (no contact for >=%ss)", worker_id, delay)
        state.remove_workers(gone)
