"""The server's life: start, serve, stop (the routes are ``luigid.web.app``).

Signal handlers only set flags; the shutdown itself (stop accepting, let in-flight requests
finish, save state once) runs in the main coroutine, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import tornado.netutil
from tornado.ioloop import PeriodicCallback

from luigid.auth import open_access_warning
from luigid.config import ConfigError
from luigid.core import gcpause
from luigid.logs import DEFAULT_SLOW_REQUEST_SECONDS
from luigid.metrics import MetricsCollector
from luigid.runtime.accept import Listener
from luigid.runtime.fronts import Fronts
from luigid.runtime.limits import server_limits_from
from luigid.runtime.loop_trace import LoopTrace
from luigid.runtime.resources import (
    MemoryWatch,
    memory_warning_threshold,
    raise_open_files_limit,
    resident_memory_bytes,
)
from luigid.runtime.stalls import StallMonitor
from luigid.scheduler import Scheduler
from luigid.storage.changelog import LocalChangeLog
from luigid.storage.snapshots import Snapshotter
from luigid.web.app import app
from luigid.web.validation import MAX_HEADER_SIZE

logger = logging.getLogger("luigi.server")

PRUNE_INTERVAL_MS = 60_000
#: the loop's own time between two slices of a long prune round (a slice is ~10-20 ms)
PRUNE_PAUSE_SECONDS = 0.02
#: Bodies up to this size are read (luigi workers send big add_task calls with many deps).
MAX_BODY_SIZE = 100 * 1024 * 1024
#: Requests slower than this are logged as warnings (everything else at debug level).
SLOW_REQUEST_SECONDS = DEFAULT_SLOW_REQUEST_SECONDS
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
#: How long in-flight requests get to finish at shutdown.
DRAIN_SECONDS = 5.0
#: reading the resident memory is one small /proc read
MEMORY_CHECK_MS = 10_000
#: while the change log refuses changes, how often it retries on its own
RECOVER_WRITES_MS = 1_000


#: exit status of a shutdown whose final save failed (docs/operations.md)
EXIT_NOT_SAVED = 4


class StartupError(Exception):
    """The server could not start (address in use, bad socket path); one line for the operator."""


def _bind(api_port: int, address: str | None, unix_socket: str | None) -> list[socket.socket]:
    try:
        if unix_socket is not None:
            return [tornado.netutil.bind_unix_socket(unix_socket)]
        return tornado.netutil.bind_sockets(api_port, address=address)
    except OSError as exc:
        where = unix_socket if unix_socket is not None else f"{address or '*'}:{api_port}"
        reason = exc.strerror or str(exc)
        if exc.errno == 98 or "in use" in reason.lower():
            reason = "address already in use (is another luigid running?)"
        raise StartupError(f"cannot listen on {where}: {reason}") from exc


class Server:
    def __init__(
        self,
        scheduler: Scheduler,
        api_port: int = 8082,
        address: str | None = None,
        unix_socket: str | None = None,
        slow_request_seconds: float = SLOW_REQUEST_SECONDS,
        on_forced_exit: Callable[[], None] | None = None,
        ha: Any = None,
    ) -> None:
        self.scheduler = scheduler
        #: the HA node (``luigid.ha.node.HaNode``): it loads the state, and only its leader
        #: prunes and takes snapshots (into PostgreSQL)
        self.ha = ha
        self.slow_request_seconds = slow_request_seconds
        #: run just before a second signal ends the process right after the final save
        self.on_forced_exit = on_forced_exit
        self.saved = False
        #: why the final save failed (the process then exits with EXIT_NOT_SAVED), else None
        self.save_error: str | None = None
        config = scheduler.config
        store = scheduler.change_store
        self.snapshots = (
            ha.snapshots
            if ha is not None
            else Snapshotter(
                scheduler.state,
                config.state_path,
                config.state_snapshot_interval,
                journal=store if store is not None else scheduler.journal,
            )
        )
        self.api_port = api_port
        self.address = address
        self.unix_socket = unix_socket
        self.should_exit: asyncio.Event | None = None  # created inside the running loop
        self._pruning: asyncio.Future[None] | None = None
        self.force_exit = False
        self.sockets: list[socket.socket] = []
        self._http: Listener | None = None
        #: the HTTP front processes ([server] http_processes > 1), else None
        self.fronts: Fronts | None = None
        self.stalls = StallMonitor(trace=LoopTrace() if config.stall_trace else None)
        self.memory = MemoryWatch(0)

    def handle_signal(self, signum: int) -> None:
        """Only set flags: the main coroutine does the work."""
        if self.should_exit is not None and self.should_exit.is_set():
            self._signal_again(signum)
            return
        logger.info("Received %s, shutting down", signal.Signals(signum).name)
        if self.should_exit is not None:
            self.should_exit.set()
        # A second signal must work even while the loop is busy (saving, sending mail,
        # joining threads at exit), so from now on the interpreter handles it directly.
        loop = asyncio.get_running_loop()
        for sig in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, lambda num, frame: self._signal_again(num))

    def _signal_again(self, signum: int) -> None:
        """Exit at once, but never before the final save has completed."""
        self.force_exit = True
        logger.info("Received %s again: exiting as soon as the state is saved", signal.Signals(signum).name)
        if self.saved:
            self.exit_now()

    def _connections(self) -> tuple[int, int]:
        """(open connections, failed accepts): this process's, or the sum its fronts report."""
        http = self._http
        if http is not None:
            return http.open_connections, http.acceptor.refused if hasattr(http, "acceptor") else 0
        if self.fronts is not None:
            return self.fronts.open_connections, self.fronts.refused
        return 0, 0

    def _server_probe(self) -> dict[str, int]:
        opened, refused = self._connections()
        store = self.scheduler.change_store
        return {
            "writes_refused": int(store is not None and store.refusing),
            "writes_refused_calls": store.refused if store is not None else 0,
            "open_connections": opened,
            "accepts_refused": refused,
            "resident_memory_bytes": resident_memory_bytes(),
        }

    def _state_probe(self) -> dict[str, Any]:
        state = self.scheduler.state
        workers = list(state.workers())
        disabled = sum(1 for w in workers if w.disabled)
        return {
            "tasks_by_status": state.counts_by_status(),
            "workers_active": len(workers) - disabled,
            "workers_disabled": disabled,
        }

    @property
    def _standing_by(self) -> bool:
        """An HA standby: its state only follows the leader's log."""
        return self.ha is not None and not self.ha.leading

    def _recover_writes(self) -> None:
        """Without calls coming in, a refusing change log still learns that space returned."""
        store = self.scheduler.change_store
        if store is not None and store.refusing:
            store.recover()

    def _periodic_prune(self) -> None:
        if self._standing_by:
            return
        store = self.scheduler.change_store
        if store is not None and not store.recover():
            return  # a prune is a change too: none is made while changes are refused
        if not self._prune_running:
            self._pruning = asyncio.ensure_future(self._prune())

    @property
    def _prune_running(self) -> bool:
        return self._pruning is not None and not self._pruning.done()

    def _snapshot_tick(self) -> None:
        # a round may have been started, or left unfinished, by a read call's prune
        self.snapshots.tick(hold=self._prune_running or self.scheduler.pruner.pruning or self._standing_by)

    async def _prune(self) -> None:
        """A whole prune round, a slice at a time, handing the loop back in between.

        The pause between slices is as long as a slice: a request needs several turns of
        the loop, and with slices back to back each turn waited for one (a ping took
        ~200 ms during a 100k-task removal round). A snapshot still being written is let
        finish first, and none starts during the round (see ``_snapshot_tick``).
        """
        give_up = time.monotonic() + max(self.snapshots.interval, 1.0)  # a hung disk must not stop pruning
        while self.snapshots.writing and time.monotonic() < give_up:
            await asyncio.sleep(PRUNE_PAUSE_SECONDS)
        try:
            while not self._standing_by and self.scheduler.prune_slice():
                await asyncio.sleep(PRUNE_PAUSE_SECONDS)
        except Exception:
            logger.exception("Pruning failed; the next round starts in %d s", PRUNE_INTERVAL_MS // 1000)
            return
        # Move what survived into the permanent generation: full GC passes then scan only
        # recent objects instead of every task. Records hold no reference cycles, so
        # refcounting still frees them when they are pruned.
        gc.freeze()

    def startup(self) -> None:
        collector = self.scheduler.metrics_collector
        collector.set_state_probe(self._state_probe)
        collector.set_stall_probe(self.stalls.reading)
        collector.set_server_probe(self._server_probe)
        history = self.scheduler.task_history
        if hasattr(history, "queue_depth"):
            collector.set_history_probe(
                lambda: {"queue_depth": history.queue_depth, "write_failures": history.write_failures}
            )
        try:
            application = app(self.scheduler, ha=self.ha)
            limits = server_limits_from(self.scheduler.settings.sections)
        except ConfigError as exc:
            raise StartupError(str(exc)) from None
        raise_open_files_limit(limits.max_open_files)
        self.memory = MemoryWatch(memory_warning_threshold(limits.memory_warning_threshold))
        self.sockets = _bind(self.api_port, self.address, self.unix_socket)
        self.application = application
        self.application.settings["slow_request_seconds"] = self.slow_request_seconds
        warning = open_access_warning(application.settings["guard"], self.address, self.unix_socket)
        if warning is not None:
            logger.warning("%s", warning)
        if limits.http_processes > 1:
            self._start_fronts(limits)
            return
        self._http = Listener(
            self.application,
            max_body_size=MAX_BODY_SIZE,
            max_buffer_size=MAX_BODY_SIZE,
            xheaders=True,
            max_header_size=MAX_HEADER_SIZE,
            idle_connection_timeout=limits.idle_connection_timeout,
        )
        self._http.add_sockets(self.sockets)

    def _start_fronts(self, limits: Any) -> None:
        """HTTP is parsed in front processes; this one runs the calls they hand over and
        answers the requests they forward through the same application."""
        collector = self.scheduler.metrics_collector
        observe = getattr(collector, "observe_rpc", None)
        # the base collector's hook does nothing: no frame per call for it
        wanted = (
            observe is not None
            and getattr(type(collector), "observe_rpc", None) is not MetricsCollector.observe_rpc
        )
        settings = Fronts.settings_for(
            self.scheduler.settings, self.sockets, limits, self.slow_request_seconds, wanted
        )
        self.fronts = Fronts(
            limits.http_processes, self.sockets, self.scheduler, self.application, settings, observe
        )
        self.fronts.start()
        logger.info("HTTP parsed by %d front processes: %s", limits.http_processes, self.fronts.pids)

    @property
    def bound(self) -> list[Any]:
        return [s.getsockname() for s in self.sockets]

    async def serve(self, ready: Any = None) -> None:
        loop = asyncio.get_running_loop()
        self.should_exit = asyncio.Event()
        for sig in SHUTDOWN_SIGNALS:
            loop.add_signal_handler(sig, self.handle_signal, sig)
        if self.ha is not None:
            from luigid.ha.node import HaStartError

            try:
                await self.ha.start()  # loads the state from PostgreSQL
            except HaStartError as exc:
                raise StartupError(str(exc)) from None
        self.startup()
        if isinstance(self.stalls.trace, LoopTrace):
            self.stalls.trace.install()
        self.stalls.start()
        pruner = PeriodicCallback(self._periodic_prune, PRUNE_INTERVAL_MS)
        pruner.start()
        snapshots = PeriodicCallback(self._snapshot_tick, self.snapshots.tick_ms)
        if self.snapshots.enabled:
            snapshots.start()
        self.memory.check()  # loading a big state file may already have passed the threshold
        memory = PeriodicCallback(self.memory.check, MEMORY_CHECK_MS)
        memory.start()
        recover = PeriodicCallback(self._recover_writes, RECOVER_WRITES_MS)
        recover.start()
        logger.info("Scheduler starting up on %s", self.bound)
        if ready is not None:
            ready(self)
        try:
            await self.should_exit.wait()
        finally:
            pruner.stop()
            if self._pruning is not None:
                self._pruning.cancel()  # the final save settles what a round left half done
            snapshots.stop()
            memory.stop()
            recover.stop()
            await self.shutdown()
            for sig in SHUTDOWN_SIGNALS:
                loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        logger.info("Scheduler instance shutting down")
        if self._http is not None:
            self._http.stop()  # stop accepting
            deadline = time.monotonic() + DRAIN_SECONDS
            while (
                self.application.settings["in_flight"].count
                and time.monotonic() < deadline
                and not self.force_exit
            ):
                await asyncio.sleep(0.02)
            await self._http.close_all_connections()
        if self.fronts is not None:
            # the fronts stop accepting and drain; their calls are answered here meanwhile
            await self.fronts.stop(DRAIN_SECONDS, lambda: self.force_exit)
            for sock in self.sockets:
                sock.close()
        if self.stalls.running:  # what follows (the final save) blocks on purpose: not a stall
            self.stalls.stop()
            logger.info("%s", self.stalls.summary())
        if isinstance(self.stalls.trace, LoopTrace):
            self.stalls.trace.uninstall()
        self.snapshots.stop()  # an unfinished periodic snapshot is older than the final save
        if self.ha is not None:
            await self.ha.stop()  # every change is in PostgreSQL already: no state file
        else:
            try:
                self.scheduler.dump()
            except Exception as exc:  # a full disk: one line, and the change log still holds it all
                where = self.scheduler.config.state_path
                self.save_error = f"could not save the state in {where}: {_reason(exc)}"
                logger.error(
                    "%s; the last snapshot and the change log next to it still hold every acknowledged "
                    "change, and are read at the next start",
                    self.save_error,
                )
        self.saved = True
        if self.force_exit:
            self.exit_now()
        self.scheduler.close()
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        if self.unix_socket is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.unix_socket)

    def exit_now(self) -> None:
        """End the process at once (second signal, state already saved)."""
        self._remove_socket_file()
        if self.on_forced_exit is not None:
            self.on_forced_exit()
        logging.shutdown()
        os._exit(0 if self.save_error is None else EXIT_NOT_SAVED)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def run(
    api_port: int = 8082,
    address: str | None = None,
    unix_socket: str | None = None,
    scheduler: Scheduler | None = None,
    ready: Any = None,
    **options: Any,
) -> Server:
    """Load state, serve until a signal, save state once. Raises ``StartupError``.
    ``options`` go to ``Server`` (slow_request_seconds, on_forced_exit)."""
    if scheduler is None:
        scheduler = Scheduler()
    config = scheduler.config
    ha = _ha_node(scheduler, address, api_port, unix_socket)
    if ha is not None:
        scheduler.attach_change_store(ha.store)
        gc.collect()
        server = Server(
            scheduler, api_port=api_port, address=address, unix_socket=unix_socket, ha=ha, **options
        )
        asyncio.run(server.serve(ready=ready))
        return server
    if scheduler.change_store is None and scheduler.journal is None:
        # the last save is older than the last calls: every change is logged
        # (luigid.storage.changelog). Without periodic snapshots the log is cut only at shutdown.
        scheduler.attach_change_store(LocalChangeLog(config.state_path, config.journal_fsync))
    # collect start-up garbage while the heap is small; loading makes no cycles (and runs
    # with the collector paused), so a full pass afterwards would only walk every task
    gc.collect()
    scheduler.load()
    gc.freeze()  # see Server._periodic_prune; also keeps snapshot forks copy-on-write friendly
    gcpause.freeze_after_slow_collections()
    server = Server(scheduler, api_port=api_port, address=address, unix_socket=unix_socket, **options)
    asyncio.run(server.serve(ready=ready))
    return server


def _ha_node(scheduler: Scheduler, address: str | None, port: int, unix_socket: str | None) -> Any:
    """The HA node the ``[ha]`` section asks for, or None. Raises ``StartupError``."""
    from luigid.ha.config import ha_config_from

    try:
        config = ha_config_from(scheduler.settings.sections, address, port, unix_socket)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    if config is None:
        return None
    try:
        from luigid.ha.node import HaNode
    except ImportError as exc:
        raise StartupError(f"[ha] needs psycopg 3 (pip install 'luigid[ha]'): {exc}") from None
    return HaNode(scheduler, config)
