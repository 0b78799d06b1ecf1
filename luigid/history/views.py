"""What the history pages show: plain read-only records, free of any database types."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EventView:
    id: int
    name: str
    ts: datetime.datetime
    message: str | None = None


@dataclass(frozen=True)
class RunView:
    id: int
    task_id: str | None
    name: str | None
    host: str | None
    params: dict[str, str | None] = field(default_factory=dict)
    #: newest event (listing pages) or all shown events, newest first (run page)
    events: tuple[EventView, ...] = ()

    @property
    def last_event(self) -> EventView | None:
        return self.events[0] if self.events else None


@dataclass(frozen=True)
class FamilyView:
    name: str
    runs: int


@dataclass(frozen=True)
class DurationPoint:
    run_id: int
    task_id: str | None
    started: datetime.datetime
    seconds: float
    outcome: str
