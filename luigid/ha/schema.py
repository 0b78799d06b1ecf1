"""The tables HA keeps in PostgreSQL, and the statements every part uses on them.

Tables live in the connection's current schema (a URL may choose one with
``?options=-csearch_path%3Dname``), so several clusters can share a database:

* ``luigid_ha_leader``: one row, the epoch (bumped by each new leader: the fencing token),
  the leader's name and URL, and its lease, an expiry time by PostgreSQL's clock;
* ``luigid_ha_log``: the change records after the snapshot, by sequence number, each with
  the epoch of the leader that committed it;
* ``luigid_ha_snapshot``: one row, the state file's bytes and the last sequence number it covers.

The advisory lock and the NOTIFY channel are named after the schema too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

#: first half of the two-key advisory lock ("Luid"); the second is hashtext(schema)
LOCK_CLASS = 0x4C756964

#: two nodes starting at once must not both create the tables
#: (another key than the leader lock, which a running leader holds)
CREATE_LOCK = "SELECT pg_advisory_xact_lock(%(lock_class)s + 1, hashtext(current_schema()))"
TABLES_EXIST = """
SELECT to_regclass('luigid_ha_leader') IS NOT NULL AND to_regclass('luigid_ha_log') IS NOT NULL
   AND to_regclass('luigid_ha_snapshot') IS NOT NULL
"""
CREATE = """
CREATE TABLE IF NOT EXISTS luigid_ha_leader (
    id integer PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL,
    node text NOT NULL,
    url text NOT NULL,
    lease_until timestamptz NOT NULL
);
INSERT INTO luigid_ha_leader VALUES (1, 0, '', '', '-infinity') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS luigid_ha_log (
    seq bigint PRIMARY KEY,
    epoch bigint NOT NULL,
    body text NOT NULL
);
CREATE TABLE IF NOT EXISTS luigid_ha_snapshot (
    id integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    epoch bigint NOT NULL,
    taken timestamptz NOT NULL,
    data bytea NOT NULL
);
"""

#: one statement, so one round trip and its own transaction: the records go in only if the
#: epoch is still ours, and the row lock (FOR SHARE) makes a new leader's epoch bump wait
#: until this commit is over, so a commit either lands before the bump or not at all. A
#: retried commit whose first try did land (reply lost) finds its rows there: ON CONFLICT.
COMMIT = """
WITH fence AS (
    SELECT epoch FROM luigid_ha_leader WHERE id = 1 AND epoch = %(epoch)s FOR SHARE
), ins AS (
    INSERT INTO luigid_ha_log (seq, epoch, body)
    SELECT r.seq, f.epoch, r.body
    FROM fence f, unnest(%(seqs)s::bigint[], %(bodies)s::text[]) AS r(seq, body)
    ON CONFLICT (seq) DO NOTHING
)
SELECT (SELECT count(*) FROM fence), pg_notify(%(channel)s, %(last)s)
"""

READ_LEADER = """
SELECT epoch, node, url, lease_until < now(), pg_try_advisory_lock(%(lock_class)s, hashtext(current_schema()))
FROM luigid_ha_leader WHERE id = 1
"""
PEEK_LEADER = "SELECT epoch, node, url, lease_until < now() FROM luigid_ha_leader WHERE id = 1"

#: the sessions holding the lock (a frozen leader's, once its lease has lapsed)
TERMINATE_HOLDERS = """
SELECT pg_terminate_backend(pid) FROM pg_locks
WHERE locktype = 'advisory' AND classid = %(lock_class)s
  AND objid = (hashtext(current_schema())::bigint & 4294967295)::oid AND objsubid = 2
  AND granted AND pid <> pg_backend_pid()
"""
UNLOCK = "SELECT pg_advisory_unlock_all()"

CLAIM = """
UPDATE luigid_ha_leader
SET epoch = epoch + 1, node = %(node)s, url = %(url)s, lease_until = now() + %(lease)s * interval '1 second'
WHERE id = 1 RETURNING epoch
"""
RENEW = """
UPDATE luigid_ha_leader SET lease_until = now() + %(lease)s * interval '1 second'
WHERE id = 1 AND epoch = %(epoch)s RETURNING epoch
"""
#: a leader leaving cleanly: the lease ends now, so a standby need not wait for it
RESIGN = """
UPDATE luigid_ha_leader SET lease_until = '-infinity' WHERE id = 1 AND epoch = %(epoch)s RETURNING epoch
"""

READ_LOG = "SELECT seq, body FROM luigid_ha_log WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s"
LAST_SEQ = "SELECT coalesce((SELECT max(seq) FROM luigid_ha_log), (SELECT seq FROM luigid_ha_snapshot), -1)"
SNAPSHOT_SEQ = "SELECT seq FROM luigid_ha_snapshot WHERE id = 1"
READ_SNAPSHOT = "SELECT seq, data FROM luigid_ha_snapshot WHERE id = 1"

#: the snapshot and the log it makes redundant change in one transaction, fenced like a commit
SNAPSHOT_FENCE = "SELECT 1 FROM luigid_ha_leader WHERE id = 1 AND epoch = %(epoch)s FOR SHARE"
SNAPSHOT_HAS_SEQ = "SELECT 1 FROM luigid_ha_log WHERE seq = %(seq)s"
SAVE_SNAPSHOT = """
INSERT INTO luigid_ha_snapshot (id, seq, epoch, taken, data) VALUES (1, %(seq)s, %(epoch)s, now(), %(data)s)
ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, epoch = EXCLUDED.epoch, taken = now(), data = EXCLUDED.data
WHERE luigid_ha_snapshot.seq < EXCLUDED.seq
"""
TRIM_LOG = "DELETE FROM luigid_ha_log WHERE seq <= %(seq)s"

#: the first node of a new cluster may bring the state of the single node it was (a state
#: file), as the snapshot every later change follows: only while there is nothing at all yet
SEED = """
INSERT INTO luigid_ha_snapshot (id, seq, epoch, taken, data)
SELECT 1, -1, 0, now(), %(data)s
WHERE NOT EXISTS (SELECT 1 FROM luigid_ha_log) AND NOT EXISTS (SELECT 1 FROM luigid_ha_snapshot)
"""


@dataclass(frozen=True)
class Leader:
    """The leader row as last read."""

    epoch: int
    node: str
    url: str
    #: its lease has lapsed, by PostgreSQL's clock
    lapsed: bool


def channel_for(schema: str) -> str:
    """The NOTIFY channel of a schema (an identifier: lower case, bounded length)."""
    return "luigid_ha_" + hashlib.sha1(schema.encode()).hexdigest()[:16]


def params(**values: Any) -> dict[str, Any]:
    return {"lock_class": LOCK_CLASS, **values}
