"""What the recorder copies out of a Task on the event loop: just enough to write one event later.

Snapshotting (instead of keeping the Task) means the writer never reads scheduler state from
another thread, and a queued event holds no reference that keeps a pruned task alive.
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: failure messages (usually tracebacks) are cut to this many characters to keep the queue small
MAX_MESSAGE_CHARS = 65536


class HistoryEvent(NamedTuple):
    task_id: str
    family: str
    params: dict[str, Any]
    event_name: str
    #: seconds since the epoch, taken when the scheduler reported the event
    ts: float
    host: str | None
    message: str | None


def failure_message(expl: Any) -> str | None:
    """The text stored with a FAILED event: the worker's explanation, bounded in size."""
    if expl is None:
        return None
    text = expl if isinstance(expl, str) else str(expl)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "\n[... truncated by luigid]"
    return text
