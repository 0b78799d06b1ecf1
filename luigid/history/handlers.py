"""The history pages: /history..., /tasklist...; luigi's paths, our own templates.

Every link is relative to the page it is on, so the pages work behind a reverse proxy that
mounts luigid under a path prefix. Database reads are awaited on the history's reader
threads, each after the writer has caught up with the events queued before the request
arrived (at most ``read_wait`` seconds; past that the page says what it may be missing).
Bad input gives 4xx with a message, an unreachable database 503, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import tornado.escape
import tornado.template

from luigid.core.throttled_log import ThrottledWarning
from luigid.history.chart import duration_chart, format_seconds
from luigid.history.engine import describe_db_error
from luigid.history.recorder import DbTaskHistory
from luigid.web.base import BaseHandler
from luigid.web.errors import ClientError

logger = logging.getLogger("luigid.history")
#: pages are asked for again and again while the database is slow or down: one line a minute each
_lag_warning = ThrottledWarning(logger)
_database_warning = ThrottledWarning(logger)

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "web", "templates", "history")


class PageError(ClientError):
    """An HTTP error whose message is shown to the user as is (and logged by tornado)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, "%s", message)
        self.message = message


class HistoryPage(BaseHandler):
    #: events queued before this request arrived that were still unwritten when it read
    unwritten = 0

    def initialize(self, history: DbTaskHistory, **kwargs: Any) -> None:
        super().initialize(**kwargs)
        self.history = history
        # the request has arrived: its page shows every event queued before now
        self._through = history.accepted

    def get_template_path(self) -> str:
        return TEMPLATE_DIR

    def create_template_loader(self, template_path: str) -> tornado.template.Loader:
        # Escaping is fixed here so it holds whatever the application's settings say.
        return tornado.template.Loader(template_path, autoescape="xhtml_escape")

    @property
    def root(self) -> str:
        """Relative path from this page back to the application root ("" or "../"...)."""
        return "../" * self.request.path.lstrip("/").count("/")

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(
            root=self.root,
            q=lambda text: tornado.escape.url_escape(str(text), plus=False),
            format_seconds=format_seconds,
            page_size=self.history.config.page_size,
            unwritten_note=unwritten_note(self.unwritten) if self.unwritten else "",
        )
        return namespace

    async def fetch(self, fn: Any, *args: Any) -> Any:
        """Every page's one read: after the writer caught up with this request, on the reader threads."""
        self.unwritten = await self.history.caught_up(self._through)
        if self.unwritten:
            _lag_warning.warn(
                "task history page %s: %d earlier events not yet written after %.1f s",
                self.request.path,
                self.unwritten,
                self.history.read_wait,
            )
        try:
            return await self.history.read(fn, *args)
        except RuntimeError as exc:
            raise PageError(503, f"task history is not available: {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("sqlalchemy"):
                _database_warning.warn("task history page %s: %s", self.request.path, describe_db_error(exc))
                raise PageError(503, "the task history database is unavailable; try again later") from None
            raise

    def error_message(self, status_code: int, exc: BaseException | None) -> str:
        # only what a page says about itself; tornado's own texts stay behind the reason phrase
        return exc.message if isinstance(exc, PageError) else self._reason

    def write_error_body(self, status_code: int, message: str) -> None:
        if "text/html" in self.request.headers.get("Accept", ""):
            self.render("error.html", status=status_code, message=message)  # the layout adds the note
        elif self.unwritten:
            super().write_error_body(status_code, f"{message} ({unwritten_note(self.unwritten)})")
        else:
            super().write_error_body(status_code, message)

    def require(self, value: str, what: str) -> str:
        if not value:
            raise PageError(400, f"missing {what} in the URL")
        return value


class RecentRunsPage(HistoryPage):
    async def get(self) -> None:
        runs = await self.fetch(self.history.recent_runs)
        self.render("runs.html", title="Runs in the last 24 hours", runs=runs)


class ByNamePage(HistoryPage):
    async def get(self, family: str) -> None:
        family = self.require(family, "task family")
        runs = await self.fetch(self.history.runs_by_name, family)
        self.render("runs.html", title=f"Runs of {family}", runs=runs)


class ByParamsPage(HistoryPage):
    async def get(self, family: str) -> None:
        family = self.require(family, "task family")
        params = parse_params(self.get_argument("data", "{}"))
        runs = await self.fetch(self.history.runs_by_params, family, params)
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        self.render("runs.html", title=f"Runs of {family}({shown})", runs=runs)


class ByIdPage(HistoryPage):
    async def get(self, record_id: str) -> None:
        try:
            number = int(self.require(record_id, "run id"))
        except ValueError:
            raise PageError(400, f"run id must be a whole number, not {record_id!r}") from None
        if not -(2**31) <= number < 2**31:
            raise PageError(404, f"no run with id {number}")
        run = await self.fetch(self.history.run_by_id, number)
        if run is None:
            raise PageError(404, f"no run with id {number}")
        self.render("run.html", run=run, others=[])


class ByTaskIdPage(HistoryPage):
    async def get(self, task_id: str) -> None:
        task_id = self.require(task_id, "task id")
        run, runs = await self.fetch(self.history.task_id_runs, task_id)
        if run is None:
            raise PageError(404, f"no runs recorded for task id {task_id!r}")
        self.render("run.html", run=run, others=runs)


class FamiliesPage(HistoryPage):
    async def get(self) -> None:
        families = await self.fetch(self.history.families)
        self.render("families.html", families=families)


class FamilyChartPage(HistoryPage):
    async def get(self, family: str) -> None:
        family = self.require(family, "task family")
        points = await self.fetch(self.history.run_durations, family)
        svg = duration_chart(points, f"{self.root}history/by_id/")
        self.render("chart.html", family=family, points=points, svg=svg)


def unwritten_note(count: int) -> str:
    """What a page read past ``read_wait`` says it may be missing."""
    events, were, they = ("event", "was", "it") if count == 1 else ("events", "were", "they")
    return (
        f"{count} {events} recorded before this request {were} not yet written to the history "
        f"database, which is slow or unavailable; {they} may be missing here"
    )


def parse_params(data: str) -> dict[str, str]:
    """``data=`` of /history/by_params: a JSON object of parameter name -> value (as luigi stores them)."""
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise PageError(400, f"data is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise PageError(400, 'data must be a JSON object of parameter values, e.g. {"date": "2024-01-01"}')
    params = {}
    for name, value in parsed.items():
        if isinstance(value, (dict, list)) or value is None:
            raise PageError(400, f"parameter {name!r}: expected a string value, got {json.dumps(value)}")
        params[name] = value if isinstance(value, str) else str(value)
    return params


def history_routes(history: DbTaskHistory) -> list[tuple[str, type[HistoryPage], dict[str, Any]]]:
    """Routes for the server's table; luigi's paths."""
    kwargs = {"history": history}
    return [
        (r"/history", RecentRunsPage, kwargs),
        (r"/history/by_name/(.*)", ByNamePage, kwargs),
        (r"/history/by_id/(.*)", ByIdPage, kwargs),
        (r"/history/by_task_id/(.*)", ByTaskIdPage, kwargs),
        (r"/history/by_params/(.*)", ByParamsPage, kwargs),
        (r"/tasklist", FamiliesPage, kwargs),
        (r"/tasklist/(.*)", FamilyChartPage, kwargs),
    ]
