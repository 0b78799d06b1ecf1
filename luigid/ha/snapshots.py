"""Snapshots in PostgreSQL, written by the server's forked snapshot child
(``luigid.storage.snapshots.Snapshotter`` with this sink).

The child encodes the state as the state file would be and stores it in one transaction
with the log trimmed up to the last record it covers, fenced by the epoch like a commit. A
snapshot may cover records still on their way to the log (forked between an append and its
commit): the child waits until the last one is in the log, and gives up if it never comes
(the leader stepped down, and its uncommitted changes were never kept).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from luigid.core.state import State
from luigid.ha import schema
from luigid.ha.connection import connect_sync
from luigid.storage.codec import StateFileError, encode

#: how long the child waits for the records it covers to be committed
COMMIT_WAIT = 10.0


class PgSnapshotSink:
    def __init__(self, dsn: str, lease_timeout: float, epoch: Callable[[], int | None]) -> None:
        self._dsn = dsn
        self._lease_timeout = lease_timeout
        #: the epoch the node leads (read at fork time, in the parent's memory the child copied)
        self._epoch = epoch

    def __call__(  # pragma: no cover - runs in the forked snapshot child (tests/ha restarts check it)
        self, state: State, covered: int | None, still_wanted: Callable[[], None]
    ) -> None:
        epoch = self._epoch()
        if epoch is None or covered is None or covered < 0:
            raise StateFileError("nothing to snapshot: this node does not lead or has logged nothing")
        payload = encode(state, covered)
        with connect_sync(self._dsn, self._lease_timeout) as conn:
            row = conn.execute(schema.SNAPSHOT_SEQ).fetchone()
            if row is not None and int(row[0]) >= covered:
                return  # nothing new since the last one
            deadline = time.monotonic() + COMMIT_WAIT
            while conn.execute(schema.SNAPSHOT_HAS_SEQ, {"seq": covered}).fetchone() is None:
                still_wanted()
                if time.monotonic() > deadline:
                    raise StateFileError(f"record {covered} never reached the log")
                time.sleep(0.05)
            still_wanted()
            with conn.transaction():
                if conn.execute(schema.SNAPSHOT_FENCE, {"epoch": epoch}).fetchone() is None:
                    raise StateFileError(f"epoch {epoch} is no longer current")
                conn.execute(schema.SAVE_SNAPSHOT, {"seq": covered, "epoch": epoch, "data": payload})
                conn.execute(schema.TRIM_LOG, {"seq": covered})
