"""``GET /ui/tasks``: the UI's own view of the task list (``luigid.core.browse``), outside
``/api`` so that luigi's API and replies stay exactly luigi's.

Query: ``status`` (boxes, comma-separated; none: every task), ``family`` (present: only that
family), ``search`` (words that must all appear in the display name), ``sort`` (``updated``,
``started``, ``priority``, ``name``, ``status``, ``progress``; ``-`` first for descending;
default ``-updated``), ``offset`` and ``limit`` (1-1000, default 100; pages are never longer
than ``[scheduler] max_shown_tasks``, the most luigi's task_list lists). The answer:
``{"counts": {box: n, "": all}, "families": {family: n}, "total": n, "offset": n,
"limit": n, "tasks": [{"<id>": {...as in task_list...}}, ...], "boxes": [box of each task],
"upstream_backlog": n}``. Every task is in one box: upstream failed and upstream disabled
pending tasks are in those boxes, not in PENDING. ``upstream_backlog`` counts the tasks
still to look at before those two boxes are exact (0: exact).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from typing import Any

from luigid.core import gcpause
from luigid.core.browse import BOXES, MAX_LIMIT, SORT_KEYS, Page, Scans, View, browse
from luigid.core.rpc import dumps
from luigid.scheduler import Scheduler
from luigid.web.base import BaseHandler
from luigid.web.errors import JSON_TYPE, ApiError

#: Upstream work done per turn of the event loop (a few milliseconds) ...
SETTLE_BUDGET = 20_000
#: ... and for at most this long per request, after which the answer says what is left.
SETTLE_SECONDS = 1.0
MAX_OFFSET = 10_000_000


def view_from(arguments: dict[str, list[bytes]]) -> View:
    """The view a query asks for; ApiError (400) naming the bad parameter."""

    def one(name: str, default: str | None = None) -> str | None:
        values = arguments.get(name)
        if not values:
            return default
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, f"{name}: not UTF-8") from None

    def number(name: str, default: int, low: int, high: int) -> int:
        raw = one(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{name}: not an integer: {raw[:50]!r}") from None
        if not low <= value <= high:
            raise ApiError(400, f"{name}: must be between {low} and {high}")
        return value

    boxes = tuple(b for b in (one("status") or "").split(",") if b)
    unknown = [b for b in boxes if b not in BOXES]
    if unknown:
        raise ApiError(400, f"status: unknown box {unknown[0][:50]!r} (one of {', '.join(BOXES)})")
    sort = one("sort") or "-updated"
    key = sort.removeprefix("-")
    if key not in SORT_KEYS:
        raise ApiError(400, f"sort: unknown column {key[:50]!r} (one of {', '.join(SORT_KEYS)})")
    return View(
        boxes=tuple(b for b in BOXES if b in boxes),
        family=one("family"),
        search=one("search") or "",
        sort=key,
        descending=sort.startswith("-"),
        offset=number("offset", 0, 0, MAX_OFFSET),
        limit=number("limit", 100, 1, MAX_LIMIT),
    )


class Turns:
    """One step of UI work per turn of the event loop, however many browsers ask at once.
    Steps are synchronous, so each request's own pauses do not keep them apart: five scans'
    steps all ran in one turn and added up (~50 ms at 1M tasks), with pings waiting behind.
    Waiters go first come, first served; a turn with a step hands the next turn to the
    longest waiting, so a request that just stepped queues behind the others."""

    def __init__(self) -> None:
        self._taken = False
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def wait(self) -> None:
        """Return when this request may take its step, in this turn of the loop."""
        if self._taken or self._waiting:
            handed = asyncio.get_running_loop().create_future()
            self._waiting.append(handed)
            try:
                await handed
            except asyncio.CancelledError:
                if handed.done() and not handed.cancelled():
                    self._next()  # handed the turn while being cancelled: pass it on
                raise
        self._taken = True
        asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        """The turn after a step: the longest waiting request's, or free."""
        while self._waiting:
            handed = self._waiting.popleft()
            if not handed.done():  # a cancelled waiter gives up its place
                handed.set_result(None)
                return
        self._taken = False


class TaskBrowserHandler(BaseHandler):
    def initialize(self, scheduler: Scheduler, scans: Scans, turns: Turns, **kwargs: Any) -> None:
        super().initialize(**kwargs)
        self.scheduler = scheduler
        self.scans = scans
        self.turns = turns

    async def get(self) -> None:
        view = view_from(self.request.arguments)
        # pages no longer than the scheduler's max_shown_tasks, the most a task_list lists
        cap = max(1, self.scheduler.config.max_shown_tasks)
        if view.limit > cap:
            view = dataclasses.replace(view, limit=cap)
        state = self.scheduler.state
        ui = state.ui
        give_up = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < give_up:
            await self.turns.wait()
            if not ui.settle(SETTLE_BUDGET):
                break
        steps = browse(state, view, self.scans)
        while True:
            await self.turns.wait()
            try:
                with gcpause.paused():
                    self.scans.sweep()
                    next(steps)
            except StopIteration as done:
                page: Page = done.value
                break
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.finish(self._body(view, page))

    def _body(self, view: View, page: Page) -> bytes:
        encode = self.scheduler.replies.encode
        entries = []
        for task, _ in page.tasks:
            head, display, re_enable, messages, _, _ = task.encoded or encode(task)
            entries.append(b"".join((b"{", head, display, re_enable, messages, b"}}")))
        summary = dumps(
            {
                "counts": page.counts,
                "families": page.families,
                "total": page.total,
                "offset": view.offset,
                "limit": view.limit,
                "boxes": [box for _, box in page.tasks],
                "upstream_backlog": page.backlog,
            }
        )
        return summary[:-1] + b',"tasks":[' + b",".join(entries) + b"]}"
