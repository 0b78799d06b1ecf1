"""One HA node: standby or leader, and the moves between them.

* **Start**: create the tables if needed (the first node of an empty cluster brings its state
  file, if it has one: upgrading one node to two), load the latest snapshot and the log after it.
* **Standby**: follow the log (``follower``) and campaign every tick (``election``): take the
  lock when it is free, or end a frozen holder's session once its lease has lapsed.
* **Take over**: catch up, bump the epoch (from then on the old leader cannot commit), catch
  up again (anything it committed before the bump), mark every known worker as just seen
  (a recorded change), then serve.
* **Leader**: renew the lease every tick; commit through ``store``. Losing the lock
  connection refuses writes at once (reads go on) while it reconnects; back, it leads on
  only if its epoch is still current and it gets the lock again. A lapsed lease, a newer
  epoch or a fenced commit make it step down: writes are refused, uncommitted changes are
  dropped by reloading the state from PostgreSQL, and it follows the new leader.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import time
from typing import Any

import psycopg

from luigid.core.recording import muted
from luigid.core.throttled_log import ThrottledWarning
from luigid.ha import schema
from luigid.ha.config import HaConfig
from luigid.ha.connection import connect, current_schema, ensure_tables
from luigid.ha.election import Election
from luigid.ha.follower import BATCH, LogReader
from luigid.ha.snapshots import PgSnapshotSink
from luigid.ha.store import PgChangeStore
from luigid.storage.changelog_format import Record
from luigid.storage.codec import DamagedStateFile, StateFileError
from luigid.storage.snapshots import Snapshotter
from luigid.storage.statefile import restore_payload

logger = logging.getLogger("luigi.server")

STARTING, STANDBY, LEADER, STOPPED = "starting", "standby", "leader", "stopped"
FAILURES = (psycopg.Error, OSError, asyncio.TimeoutError)


class HaStartError(Exception):
    """PostgreSQL could not be reached or prepared at start-up (one line for the operator)."""


class HaNode:
    def __init__(self, scheduler: Any, config: HaConfig) -> None:
        self.scheduler = scheduler
        self.config = config
        self.name = config.node_name
        self.url = config.advertise_url
        lease = config.lease_timeout
        #: how often the leader renews and a standby campaigns (a dead leader's successor
        #: takes over within about one tick)
        self.tick = max(0.2, min(0.5, lease / 10))
        self.role = STARTING
        self.epoch: int | None = None
        #: the leader row as last read (standbys), for /leader and forwarding
        self.leader: schema.Leader | None = None
        #: the last log record applied to the state in memory
        self.position = -1
        self._deadline = 0.0
        #: the leader's lock session is gone: writes wait until it is back
        self._lock_lost: str | None = None
        #: a step down happened: the election loop closes its connection (and so the lock)
        self._drop_lock = False
        self.store = PgChangeStore(config.db_connection, lease, "", self._refusal, self.step_down)
        self.election = Election(config.db_connection, lease, self.name, self.url)
        self.reader: LogReader | None = None
        self.snapshots = Snapshotter(
            scheduler.state,
            "PostgreSQL",
            scheduler.config.state_snapshot_interval,
            journal=self.store,
            sink=PgSnapshotSink(config.db_connection, lease, lambda: self.epoch),
        )
        self._catching = asyncio.Lock()
        scheduler.follower = True
        self._tasks: list[asyncio.Task[None]] = []
        self._warning = ThrottledWarning(logger)

    # --------------------------------------------------------------- what others ask

    @property
    def leading(self) -> bool:
        return self.role == LEADER and time.monotonic() <= self._deadline

    def _refusal(self) -> str | None:
        """Why this node may not change state now (None: it may)."""
        if self.role != LEADER:
            where = self.leader_url()
            return f"this node ({self.name}) is not the leader" + (
                f"; the leader is {where}" if where else ""
            )
        if time.monotonic() > self._deadline:
            self.step_down(f"its lease of {self.config.lease_timeout:g}s lapsed before it could renew it")
            return f"this node ({self.name}) stopped leading: its lease lapsed"
        return self._lock_lost

    def leader_url(self) -> str | None:
        """Where the leader is, as far as this node knows (None: itself, or nobody)."""
        if self.role == LEADER:
            return self.url if self.leading else None
        leader = self.leader
        if leader is None or not leader.url or leader.url == self.url or leader.lapsed:
            return None
        return leader.url

    def status(self) -> tuple[int, dict[str, Any]]:
        """``/leader``'s answer."""
        if self.leading:
            return 200, {"leader": True, "node": self.name, "epoch": self.epoch}
        leader = self.leader
        node = leader.node if leader is not None and self.leader_url() else None
        return 503, {"leader": False, "leader_url": self.leader_url(), "leader_node": node, "node": self.name}

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Prepare the tables and load the state. Raises ``HaStartError``."""
        dsn, lease = self.config.db_connection, self.config.lease_timeout
        try:
            conn = await asyncio.wait_for(connect(dsn, lease), lease)
            try:
                name = await current_schema(conn)
                seed = self._state_file()
                if await ensure_tables(conn, seed):
                    self._seeded()
            finally:
                await conn.close()
            self.reader = LogReader(dsn, lease, schema.channel_for(name))
            self.store.channel = schema.channel_for(name)
            async with self._catching:
                await self._reload()
                await self._catch_up_locked()
        except FAILURES as exc:
            await self._close_connections()
            raise HaStartError(
                f"[ha] db_connection: cannot use PostgreSQL: {' '.join(str(exc).split())}"
            ) from None
        except (StateFileError, DamagedStateFile) as exc:
            await self._close_connections()
            raise HaStartError(f"[ha] the snapshot in PostgreSQL cannot be loaded: {exc}") from None
        self.role = STANDBY
        logger.info("HA: node %s loaded the state up to change %d; campaigning", self.name, self.position)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._election_loop()), loop.create_task(self._follow_loop())]

    def _state_file(self) -> bytes | None:
        """The state file of the single node this one was (None when there is none). Only
        its saved state is brought: changes in a change log next to it are not (stop the
        single node cleanly first, which saves them into the file)."""
        try:
            with open(self.scheduler.config.state_path, "rb") as src:
                return src.read()
        except OSError:
            return None

    def _seeded(self) -> None:
        path = self.scheduler.config.state_path
        logger.warning("HA: the cluster was empty: it starts from this node's state file %s", path)
        if glob.glob(glob.escape(path) + ".changelog.*"):
            logger.warning(
                "HA: %s has change log files next to it, whose changes are not in the file and were "
                "not brought into the cluster (stop a single node cleanly before upgrading it)",
                path,
            )

    async def stop(self) -> None:
        """At shutdown: commit what is queued, hand the lease back so a standby need not wait."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.debug("HA task failed at shutdown", exc_info=True)
        if self.role == LEADER and self.epoch is not None:
            await self.store.flush(5.0)
            try:
                await self.election.resign(self.epoch)
                logger.info("HA: resigned as leader (epoch %d)", self.epoch)
            except FAILURES as exc:
                logger.warning("HA: could not resign as leader: %s", exc)
        self.role = STOPPED
        self.epoch = None
        self.store.stop_leading("the server is shutting down")
        await self._close_connections()

    async def _close_connections(self) -> None:
        await self.election.close()
        await self.store.close_connection()
        if self.reader is not None:
            await self.reader.close()

    # ------------------------------------------------------------------ election

    async def _election_loop(self) -> None:
        while True:
            if self._drop_lock:
                self._drop_lock = False
                await self.election.close()
            try:
                if self.role == LEADER:
                    await self._renew()
                else:
                    await self._campaign()
            except FAILURES as exc:
                await self.election.close()
                reason = " ".join(str(exc).split()) or type(exc).__name__
                if self.role == LEADER and self._lock_lost is None:
                    self._lock_lost = f"this node lost its connection to PostgreSQL, retry later: {reason}"
                    logger.warning("HA: %s; writes are refused until it is back", self._lock_lost)
                else:
                    self._warning.warn("HA: cannot reach PostgreSQL: %s", reason)
            except Exception:
                logger.exception("HA: election step failed")
            await asyncio.sleep(self.tick)

    async def _renew(self) -> None:
        epoch = self.epoch
        assert epoch is not None
        if time.monotonic() > self._deadline:
            self.step_down(f"its lease of {self.config.lease_timeout:g}s lapsed before it could renew it")
            return
        sent = time.monotonic()
        if not self.election.connected:  # back after losing the lock session
            leader, locked = await self.election.campaign()
            if leader.epoch != epoch:
                self.step_down(f"node {leader.node} took over (epoch {leader.epoch})")
                return
            if not locked:
                self.step_down("another node holds the leader lock")
                return
        if not await self.election.renew(epoch):
            self.step_down("a newer epoch was claimed by another node")
            return
        if self.role != LEADER or self.epoch != epoch:
            return  # stepped down while renewing
        self._deadline = sent + self.config.lease_timeout
        if self._lock_lost is not None:
            logger.info("HA: connection to PostgreSQL is back; still the leader (epoch %d)", epoch)
            self._lock_lost = None

    async def _campaign(self) -> None:
        if self.store.diverged:
            async with self._catching:
                await self._reload()
        leader, locked = await self.election.campaign()
        self.leader = leader
        if not locked:
            if leader.lapsed and leader.epoch > 0:
                # a frozen leader keeps its session, and so the lock: end it
                await self.election.end_frozen_holder()
            return
        try:
            await self._take_over()
        except BaseException:
            await self.election.close()  # lets go of the lock
            raise

    async def _take_over(self) -> None:
        async with self._catching:
            await self._catch_up_locked()
            sent = time.monotonic()
            epoch = await self.election.claim()
            self._deadline = sent + self.config.lease_timeout
            await self._catch_up_locked()  # whatever the old leader committed before the bump
            self.store.lead(epoch, self.position + 1)
            self.epoch = epoch
            self.role = LEADER
            self.scheduler.follower = False
            self._lock_lost = None
            self.leader = schema.Leader(epoch, self.name, self.url, False)
            self.snapshots.state = self.scheduler.state
            self.scheduler.mark_workers_seen()
        logger.warning("HA: node %s leads now (epoch %d, from change %d)", self.name, epoch, self.position)

    def step_down(self, reason: str) -> None:
        """Stop leading at once: refuse writes, drop what was not committed."""
        if self.role != LEADER:
            return
        logger.warning("HA: node %s stops leading: %s", self.name, reason)
        self.role = STANDBY
        self.scheduler.follower = True
        self.epoch = None
        self._lock_lost = None
        self.store.stop_leading(f"this node ({self.name}) stopped leading: {reason}")
        if not self.store.diverged:
            self.position = self.store.committed
        self.snapshots.stop()
        # let go of the lock, if it still has it, so another node can take over: at the
        # election loop's next step, which alone uses that connection
        self._drop_lock = True

    # ------------------------------------------------------------------ following

    async def _follow_loop(self) -> None:
        assert self.reader is not None
        while True:
            if self.role != STANDBY:
                # closed by the task that waits on it: a connection closed under another task's
                # wait lets that wait act on whatever connection gets the same descriptor next
                await self.reader.stop_listening()
                await asyncio.sleep(self.tick)
                continue
            try:
                async with self._catching:
                    if self.role == STANDBY:
                        await self._catch_up_locked()
                await self.reader.wait_for_commit(self.tick)
            except FAILURES as exc:
                async with self._catching:  # its read connection is used under this lock
                    await self.reader.close()
                self._warning.warn("HA: cannot follow the log: %s", " ".join(str(exc).split()))
                await asyncio.sleep(self.tick)
            except Exception:
                logger.exception("HA: following the log failed")
                await asyncio.sleep(self.tick)

    async def _catch_up_locked(self) -> None:
        """Apply every committed record after ``position`` (holding ``_catching``)."""
        reader = self.reader
        assert reader is not None
        while True:
            if self.store.diverged:
                await self._reload()
            records = await reader.records_after(self.position)
            if not records:
                if await reader.snapshot_seq() > self.position:
                    await self._reload()  # the log we needed was trimmed: start from the snapshot
                    continue
                return
            if records[0].seq != self.position + 1:
                await self._reload()
                continue
            self._apply(records)
            if len(records) < BATCH:
                return

    def _apply(self, records: list[Record]) -> None:
        scheduler = self.scheduler
        with muted(scheduler):
            for record in records:
                scheduler.recorder.replay(scheduler, record.method, record.arguments, record.now, record.ids)
                self.position = record.seq

    async def _reload(self) -> None:
        """Start again from the latest snapshot (holding ``_catching``)."""
        reader = self.reader
        assert reader is not None
        snapshot = await reader.snapshot()
        scheduler = self.scheduler
        scheduler.reset_state()
        self.position = -1
        with muted(scheduler):
            if snapshot is not None:
                seq, payload = snapshot
                tasks, workers, _ = restore_payload(scheduler.state, payload)
                self.position = seq
                logger.info(
                    "HA: loaded the snapshot of change %d (%d tasks, %d workers)", seq, tasks, workers
                )
            scheduler.restored()
        self.snapshots.state = scheduler.state
        self.store.diverged = False
