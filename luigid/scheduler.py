"""The scheduler as luigi's users know it: ``from luigid.scheduler import Scheduler``.

This is the composition root: it reads the config, builds what the config asks for
(metrics collector, e-mail notifiers, task history) and hands it to the scheduler in
``luigid.core``, which imports none of them; and it loads and saves the state file. The
daemon (``luigid.runtime.server``, ``luigid.cmdline``) builds this one too, so programmatic
usage (``s = Scheduler(); s.load(); luigid.server.run(scheduler=s)``) and luigi's own
in-process tests get the same object.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from luigid.config import LuigidConfig, SchedulerConfig, load_config, scheduler_config_from
from luigid.core import scheduler as core
from luigid.core.model import Task
from luigid.core.recording import muted
from luigid.core.rpc import RPC_METHODS, rpc_method
from luigid.core.throttled_log import ThrottledWarning
from luigid.metrics import make_collector
from luigid.notify import disabled_task_email, make_batch_notifier, make_notifier
from luigid.storage import statefile
from luigid.storage.changelog import ChangeStore
from luigid.storage.journal import Journal

__all__ = ["RPC_METHODS", "Scheduler", "rpc_method"]

logger = logging.getLogger("luigi.server")


class DisableMail:
    """luigi's error mail for a task its failures disabled, through ``notifier``."""

    def __init__(self, notifier: Any, disable_persist: float) -> None:
        self._notifier = notifier
        self._disable_persist = disable_persist
        self._queue_warning = ThrottledWarning(logger)

    def disabled_for_failures(self, task: Task) -> None:
        subject, body = disabled_task_email(task, self._disable_persist)
        logger.warning("%s", body)
        try:
            self._notifier.send_error_email(subject, body)
        except Exception:
            self._queue_warning.warn(
                "Could not queue the disable notification for %s", task.id, exc_info=True
            )


class Scheduler(core.Scheduler):
    """``Scheduler(config=None, resources=None, task_history_impl=None, **kwargs)`` as in
    luigi: ``config`` is a ``SchedulerConfig`` (or a whole ``LuigidConfig``); when it is
    omitted the config files are read and ``kwargs`` override ``[scheduler]`` keys. Like
    luigi's, it builds the metrics collector, notifiers and task history the config asks
    for unless handed one. It pickles as the core scheduler does: the state without the
    collaborators, which are do-nothing in a copy (the e-mail notifier is None)."""

    #: the status journal of an older luigid (kept for programs that set one up themselves)
    journal: Journal | None
    #: the change log (the daemon sets one up before ``load``; see ``luigid.core.recording``)
    change_store: ChangeStore | None = None

    #: the e-mail notifier is a collaborator too: an unpickled scheduler has none (its
    #: disable mail is core's ``NoAlerts``)
    _NOT_PICKLED = core.Scheduler._NOT_PICKLED | {"notifier", "change_store"}

    def __init__(
        self,
        config: SchedulerConfig | LuigidConfig | None = None,
        resources: dict[str, int] | None = None,
        task_history_impl: Any = None,
        *,
        metrics_collector: Any = None,
        notifier: Any = None,
        batch_notifier: Any = None,
        **kwargs: Any,
    ) -> None:
        if config is None:
            files = load_config()
            config = replace(files, scheduler=scheduler_config_from(files.sections, kwargs))
        elif kwargs:
            raise TypeError("pass [scheduler] overrides either as config or as keyword arguments")
        settings = config if isinstance(config, LuigidConfig) else LuigidConfig(scheduler=config)
        self.settings = settings
        scheduler = settings.scheduler
        sections = settings.sections
        # in luigi's order, so that the first thing the config gets wrong is the one reported
        collector = metrics_collector or make_collector(scheduler, sections)
        self.notifier: Any = notifier or make_notifier(scheduler, sections)
        if batch_notifier is None and scheduler.batch_emails:
            batch_notifier = make_batch_notifier(scheduler, sections)
        if task_history_impl is None and scheduler.record_task_history:
            from luigid.history import DbTaskHistory  # needs SQLAlchemy: only when asked for

            task_history_impl = DbTaskHistory.from_config(sections)
            task_history_impl.start()
        super().__init__(
            scheduler,
            dict(resources if resources is not None else settings.resources),
            task_history=task_history_impl,
            metrics_collector=collector,
            batch_notifier=batch_notifier,
            alerts=DisableMail(self.notifier, scheduler.disable_persist),
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.notifier = None

    def attach_change_store(self, store: ChangeStore) -> None:
        """Record every state change in ``store`` from now on (before ``load``, which replays it)."""
        self.change_store = store
        self.recorder.log = store

    def load(self) -> None:
        """Load the state file at ``state_path`` (see ``luigid.storage.statefile``), then
        replay the change log written after it. Nothing is sent meanwhile (``muted``)."""
        # Changes the journal replay makes are not journaled again: written now, they would
        # land in a newer generation with the replay's own times, and a second crash before
        # the next snapshot would replay those instead of the originals (still on disk).
        journal, self.journal = self.journal, None
        store = self.change_store
        if journal is None and store is not None:
            journal = store.legacy  # an older luigid's status journal, read once
        try:
            with muted(self):  # a replay must not send mail, history or metrics again
                _, generation = statefile.load_snapshot(self.state, self.config.state_path, journal)
                self.restored()
                if store is not None:
                    self._replay(store, generation)
        finally:
            self.journal = journal if self.change_store is None else None

    def _replay(self, store: ChangeStore, generation: int | None) -> None:
        if generation is not None:
            store.start_after(generation)
        count = 0
        for record in store.records_after(generation):
            self.recorder.replay(self, record.method, record.arguments, record.now, record.ids)
            count += 1
        if count:
            logger.info("Change log: replayed %d changes made after the snapshot", count)
        if store.cut_short:  # what was replayed is no longer on disk: snapshot it now
            try:
                statefile.save_state(self.state, self.config.state_path, store)
            except OSError as exc:  # a full disk must not stop the start: the next snapshot retries
                logger.error(
                    "Could not save the replayed state in %s (%s); it is only in memory until the "
                    "next snapshot",
                    self.config.state_path,
                    exc.strerror or exc,
                )

    def dump(self) -> None:
        """Write the state file atomically, then flush batched e-mail."""
        store = self.change_store
        statefile.save_state(self.state, self.config.state_path, store if store is not None else self.journal)
        if self.batch_notifier is not None:
            self.batch_notifier.send_email()

    def close(self, timeout: float = 5.0) -> None:
        """Let background senders finish (after ``dump``), then release them."""
        for part in (self.notifier, self.batch_notifier):
            stop = getattr(part, "stop", None)
            if stop is not None:
                stop(timeout)
        stop_history = getattr(self.task_history, "stop", None)
        if stop_history is not None:
            stop_history(timeout)
        close = getattr(self.metrics_collector, "close", None)
        if close is not None:
            close()
        if self.journal is not None:
            self.journal.close()
        if self.change_store is not None:
            self.change_store.close()
