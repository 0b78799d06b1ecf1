"""Worker-supplied strings are data, never markup: HTML payloads in task ids, parameters,
errors, status messages, worker info, tracking URLs and the URL fragment show as text
and run nothing. (The page fixture fails the test on any JavaScript dialog; the page's
CSP is bypassed, so this is the rendering itself being safe.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from luigi.rpc import RemoteScheduler

from tests.web.ui.support import XSS, UiServer, open_ui, start_pipeline_server

pytestmark = pytest.mark.browser

EVIL_WORKER = "evil-worker"
SVG_XSS = "<svg onload=alert(2)>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    srv = start_pipeline_server(tmp_path_factory.mktemp("xss"))
    try:
        client: Any = RemoteScheduler(srv.base)
        client.add_worker(EVIL_WORKER, {"host": XSS, "username": SVG_XSS, "pid": 1, "workers": 1})
        client.add_task(
            worker=EVIL_WORKER,
            task_id=XSS,
            status="FAILED",
            family="Evil",
            params={"p": XSS},
            expl=json.dumps(f"Traceback (most recent call last):\nValueError: {XSS}"),
            deps=[f"Missing_{SVG_XSS}"],
        )
        client.set_task_status_message(XSS, f"message {SVG_XSS}")
        for kind, url in (("js", "javascript:alert(1)"), ("https", "https://tracker.invalid/job/1")):
            client.add_task(
                worker=EVIL_WORKER,
                task_id=f"EvilRunning_{kind}",
                status="RUNNING",
                family="EvilRunning",
                params={"kind": kind},
                tracking_url=url,
            )
    except BaseException:
        srv.stop()
        raise
    yield srv
    srv.stop()


def assert_inert(page: Any) -> None:
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0
    assert page.locator("a[href^='javascript' i]").count() == 0


def test_task_table_shows_payloads_as_text(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    ids = page.eval_on_selector_all("#task-table tr.task-row", "rows => rows.map(r => r.dataset.taskId)")
    assert XSS in ids
    evil = page.locator("#task-table tr.task-row").nth(ids.index(XSS))
    assert evil.locator(".param-value").text_content() == XSS
    assert evil.locator(".cell-message").text_content() == f"message {SVG_XSS}"
    long_running = page.locator("#task-table tr.task-row").nth(ids.index(server.task_id("LongRunning_")))
    assert long_running.locator(".param-value").text_content() == XSS
    assert page.locator("#family-list .family[data-family=Evil]").count() == 1
    assert_inert(page)


def test_tracking_urls_link_only_when_http(page: Any, server: UiServer) -> None:
    open_ui(page, server, "status=RUNNING")
    ids = page.eval_on_selector_all("#task-table tr.task-row", "rows => rows.map(r => r.dataset.taskId)")
    rows = page.locator("#task-table tr.task-row")
    js = rows.nth(ids.index("EvilRunning_js")).locator(".cell-tracking")
    assert js.locator("a").count() == 0
    assert js.text_content() == "javascript:alert(1)"
    https = rows.nth(ids.index("EvilRunning_https")).locator(".cell-tracking a")
    assert https.get_attribute("href") == "https://tracker.invalid/job/1"
    assert https.get_attribute("rel") == "noopener noreferrer"
    assert_inert(page)


def test_error_text_shows_as_text(page: Any, server: UiServer) -> None:
    open_ui(page, server, "status=FAILED")
    ids = page.eval_on_selector_all("#task-table tr.task-row", "rows => rows.map(r => r.dataset.taskId)")
    page.locator("#task-table tr.task-row").nth(ids.index(XSS)).locator("button.act-error").click()
    pre = page.locator("dialog[open] pre.traceback")
    pre.wait_for()
    assert pre.text_content() == f"Traceback (most recent call last):\nValueError: {XSS}"
    assert page.locator("dialog[open] .task-title").text_content() == f"Evil(p={XSS})"
    assert_inert(page)


def test_graph_labels_show_as_text(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=graph&task=" + quote(XSS))
    page.wait_for_selector("#graph-svg g.node")
    nodes = page.eval_on_selector_all("#graph-svg g.node", "ns => ns.map(n => n.dataset.taskId)")
    assert set(nodes) == {XSS, f"Missing_{SVG_XSS}"}
    assert page.input_value("#graph-task") == XSS
    assert page.text_content("#graph-info .task-title") == f"Evil(p={XSS})"
    titles = page.eval_on_selector_all("#graph-svg g.node > title", "ts => ts.map(t => t.textContent)")
    assert any(XSS in t for t in titles)
    assert page.evaluate("document.querySelectorAll('#graph-svg svg, #graph-svg foreignObject').length") == 0
    assert_inert(page)


def test_worker_info_shows_as_text(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=workers")
    card = page.locator(f".worker-card[data-worker={json.dumps(EVIL_WORKER)}]")
    assert card.locator("h2").text_content() == XSS
    fields = card.locator(".field dd")
    assert XSS in fields.all_text_contents() and SVG_XSS in fields.all_text_contents()
    assert_inert(page)


@pytest.mark.parametrize(
    "fragment",
    [
        "search=" + quote(XSS),
        "tab=tasks&family=" + quote(SVG_XSS) + "&status=" + quote(XSS),
        "tab=" + quote(XSS),
        "tab=graph&task=" + quote(SVG_XSS + "x"),
        quote(XSS, safe="<>= "),
    ],
)
def test_url_fragment_payloads_stay_inert(page: Any, server: UiServer, fragment: str) -> None:
    open_ui(page, server, fragment)
    if fragment.startswith("search="):
        assert page.input_value("#task-search") == XSS
    if "family=" in fragment:
        names = page.eval_on_selector_all(
            "#family-list .family[data-family]", "bs => bs.map(b => b.dataset.family)"
        )
        assert SVG_XSS in names
        selected = page.eval_on_selector_all(
            "#family-list .family[aria-pressed=true]", "bs => bs.map(b => b.textContent)"
        )
        assert selected == [SVG_XSS]
    if fragment.startswith("tab=graph"):
        assert page.text_content("#graph-notice") == "The scheduler does not know this task."
    assert_inert(page)
