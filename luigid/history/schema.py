"""Table layout: luigi's three history tables, column for column, plus one table of our own.

``tasks``, ``task_parameters`` and ``task_events`` keep luigi's names, columns, types and
index names, so databases written by luigi open here and luigi (and dashboards built on
those tables) can read what we write.

Failure messages go in a separate table, ``task_event_messages`` (one row per FAILED event
that had a message), rather than in a new column on ``task_events``: creating a missing
table is all we ever do to an existing database, so a luigi-written database never needs an
ALTER, and luigi, which neither knows nor touches the extra table, keeps working on ours.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.String(200), index=True),
    sa.Column("name", sa.String(128), index=True),
    sa.Column("host", sa.String(128)),
)

task_parameters = sa.Table(
    "task_parameters",
    metadata,
    sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text),
)

task_events = sa.Table(
    "task_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id"), index=True),
    sa.Column("event_name", sa.String(20)),
    sa.Column("ts", sa.TIMESTAMP, index=True, nullable=False),
)

task_event_messages = sa.Table(
    "task_event_messages",
    metadata,
    sa.Column("event_id", sa.Integer, sa.ForeignKey("task_events.id"), primary_key=True),
    sa.Column("message", sa.Text),
)

# Column widths, so over-long values are cut here instead of failing a whole batch on
# databases that enforce VARCHAR lengths.
TASK_ID_LENGTH = 200
NAME_LENGTH = 128
HOST_LENGTH = 128
PARAM_NAME_LENGTH = 128


def create_missing(engine: sa.engine.Engine) -> None:
    """Create whichever of our tables (and their indexes) do not exist yet; never alter one that does."""
    metadata.create_all(engine, checkfirst=True)
