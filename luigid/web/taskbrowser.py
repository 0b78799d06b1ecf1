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


class TaskBrowserHandler(BaseHandler):
    def initialize(self, scheduler: Scheduler, scans: Scans, **kwargs: Any) -> None:
        super().initialize(**kwargs)
        self.scheduler = scheduler
        self.scans = scans

    async def get(self) -> None:
        view = view_from(self.request.arguments)
        # pages no longer than the scheduler's max_shown_tasks, the most a task_list lists
        cap = max(1, self.scheduler.config.max_shown_tasks)
        if view.limit > cap:
            view = dataclasses.replace(view, limit=cap)
        state = self.scheduler.state
        ui = state.ui
        give_up = time.monotonic() + SETTLE_SECONDS
        while ui.settle(SETTLE_BUDGET) and time.monotonic() < give_up:
            await asyncio.sleep(0)
        steps = browse(state, view, self.scans)
        while True:
            try:
                with gcpause.paused():
                    next(steps)
            except StopIteration as done:
                page: Page = done.value
                break
            await asyncio.sleep(0)
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
