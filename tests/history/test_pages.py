"""The history pages over real HTTP: content, escaping, errors, and working behind a path prefix."""

from __future__ import annotations

import html.parser
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import tornado.httpclient
import tornado.web

from luigid.config import SchedulerConfig
from luigid.history import DbTaskHistory, history_routes
from luigid.scheduler import Scheduler
from luigid.web.app import log_request
from tests.history.support import HistoryFactory, make_task, run_once
from tests.support.serving import ServerThread

HTML = {"Accept": "text/html"}


class PrefixProxy(tornado.web.RequestHandler):
    """A reverse proxy mounting the backend under /luigi/, stripping the prefix as nginx would."""

    def initialize(self, backend: str) -> None:
        self.backend = backend

    async def get(self, _rest: str) -> None:
        upstream = self.backend + self.request.uri[len("/luigi") :]
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            upstream, raise_error=False, headers={"Accept": self.request.headers.get("Accept", "*/*")}
        )
        self.set_status(response.code)
        self.set_header("Content-Type", response.headers.get("Content-Type", "text/plain"))
        self.finish(response.body)


class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs.extend(value for name, value in attrs if name == "href" and value is not None)


def links(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return parser.hrefs


@pytest.fixture
def history(make_history: HistoryFactory) -> DbTaskHistory:
    """A history with runs of two families, one of them failed with a hostile message."""
    history = make_history()
    day = make_task("Daily_2024_01_01", family="Daily", params={"date": "2024-01-01", "mode": "<b>full</b>"})
    run_once(history, day, host="box-1", failure="Traceback <script>alert('x')</script>")
    run_once(history, day, host="box-2")
    run_once(
        history, make_task("Daily_2024_01_02", family="Daily", params={"date": "2024-01-02", "mode": "x"})
    )
    scheduler = Scheduler(SchedulerConfig(record_task_history=True), task_history_impl=history)
    scheduler.add_task(worker="w1", task_id="Weekly_1", family="Weekly", params={"week": "1"})
    scheduler.get_work(worker="w1", host="box-3")
    assert history.flush(timeout=30)
    return history


@pytest.fixture
def base(history: DbTaskHistory) -> Iterator[str]:
    with ServerThread(history_app(history)) as url:
        yield url


def history_app(history: DbTaskHistory) -> tornado.web.Application:
    """Our routes in an application logging requests the way luigid's server does."""
    return tornado.web.Application(history_routes(history), log_function=log_request)


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=30, **kwargs)


def test_recent_runs(base: str) -> None:
    response = get(f"{base}/history")
    assert response.status_code == 200
    page = response.text
    for text in ("Daily_2024_01_01", "Daily_2024_01_02", "Weekly_1", "box-2", "box-3", "RUNNING", "DONE"):
        assert text in page
    assert page.count('href="history/by_id/') == 4  # four runs, one link each


def test_run_page_shows_events_message_and_escapes(base: str, history: DbTaskHistory) -> None:
    first = history.runs_by_task_id("Daily_2024_01_01")[-1]
    response = get(f"{base}/history/by_id/{first.id}")
    assert response.status_code == 200
    page = response.text
    assert "Traceback &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script>" not in page and "<b>full</b>" not in page
    assert "&lt;b&gt;full&lt;/b&gt;" in page
    assert page.index("FAILED") < page.index("RUNNING") < page.index("PENDING")  # newest first
    assert "box-1" in page


def test_task_id_page_shows_latest_run_and_all_runs(base: str, history: DbTaskHistory) -> None:
    runs = history.runs_by_task_id("Daily_2024_01_01")
    assert len(runs) == 2
    page = get(f"{base}/history/by_task_id/Daily_2024_01_01").text
    assert f"Run #{runs[0].id} of Daily" in page
    assert "All runs of this task" in page
    assert f'href="../../history/by_id/{runs[1].id}"' in page


def test_by_name_and_by_params(base: str) -> None:
    by_name = get(f"{base}/history/by_name/Daily").text
    assert by_name.count('href="../../history/by_id/') == 3
    assert "Weekly_1" not in by_name
    response = get(f"{base}/history/by_params/Daily", params={"data": json.dumps({"date": "2024-01-02"})})
    assert response.status_code == 200
    assert "Daily_2024_01_02" in response.text and "Daily_2024_01_01" not in response.text
    none = get(f"{base}/history/by_params/Daily", params={"data": json.dumps({"date": "1999-01-01"})})
    assert none.status_code == 200 and "No runs recorded." in none.text


def test_tasklist_and_chart(base: str) -> None:
    families = get(f"{base}/tasklist").text
    assert 'href="tasklist/Daily"' in families and 'href="tasklist/Weekly"' in families
    chart = get(f"{base}/tasklist/Daily")
    assert chart.status_code == 200
    svg = chart.text[chart.text.index("<svg") : chart.text.index("</svg>")]
    assert svg.count("<circle") == 3  # three finished runs
    assert svg.count('class="run failed"') == 1 and svg.count('class="run done"') == 2
    assert "<script" not in chart.text and "cdn" not in chart.text.lower()
    empty = get(f"{base}/tasklist/Weekly").text  # started, never finished
    assert "No finished runs recorded." in empty


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/history/by_id/abc", 400, "run id must be a whole number"),
        ("/history/by_id/999999", 404, "no run with id 999999"),
        ("/history/by_id/99999999999999999999", 404, "no run with id"),
        ("/history/by_task_id/Nope_1", 404, "no runs recorded for task id 'Nope_1'"),
        ("/history/by_params/Daily?data=%7Bnot-json", 400, "data is not valid JSON"),
        ("/history/by_params/Daily?data=%5B1%5D", 400, "data must be a JSON object"),
        ("/history/by_params/Daily?data=%7B%22a%22%3A%7B%7D%7D", 400, "parameter 'a': expected a string"),
        ("/history/by_name/", 400, "missing task family"),
        ("/tasklist/", 400, "missing task family"),
    ],
)
def test_bad_input_gets_a_clear_4xx(base: str, path: str, status: int, message: str) -> None:
    response = get(base + path)
    assert response.status_code == status
    assert message in response.json()["error"]
    as_html = get(base + path, headers=HTML)
    assert as_html.status_code == status
    assert "text/html" in as_html.headers["Content-Type"]
    assert message.replace("'", "&#x27;") in as_html.text


def test_unavailable_database_is_a_503(make_history: HistoryFactory, tmp_path: Path) -> None:
    history = make_history(f"sqlite:///{tmp_path / 'missing' / 'h.db'}")
    with ServerThread(history_app(history)) as url:
        response = get(f"{url}/history")
    assert response.status_code == 503
    assert response.json() == {"error": "the task history database is unavailable; try again later"}


def test_every_link_works_behind_a_path_prefix(base: str) -> None:
    """Crawl every page through a prefix-stripping proxy: all links are relative and all resolve."""
    proxy_app = tornado.web.Application([(r"/luigi/(.*)", PrefixProxy, {"backend": base})])
    with ServerThread(proxy_app) as proxy:
        start = f"{proxy}/luigi/history"
        seen: set[str] = set()
        todo = [start]
        while todo and len(seen) < 200:
            url = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            response = get(url, headers=HTML)
            assert response.status_code == 200, url
            for href in links(response.text):
                assert not href.startswith(("/", "http:", "https:")), f"absolute link {href} on {url}"
                target = urljoin(url, href)
                assert target.startswith(f"{proxy}/luigi/"), f"{href} on {url} leaves the prefix"
                if urlsplit(target).path != "/luigi/":  # the scheduler's own root page is not ours
                    todo.append(target)
    pages = {"/".join(urlsplit(u).path.split("/")[2:4]) for u in seen}
    assert {
        "history",
        "history/by_id",
        "history/by_name",
        "history/by_task_id",
        "history/by_params",
        "tasklist",
        "tasklist/Daily",
    } <= pages
