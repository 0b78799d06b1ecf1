"""The visualiser's views against a luigid whose tasks came from a real luigi worker:
counts, filters, search, the graph, workers, resources, the header and URL state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import wait_for
from tests.web.ui.support import UiServer, open_ui, settle, start_pipeline_server

pytestmark = pytest.mark.browser

# What pipeline.py leaves behind while its LongRunning task runs.
EXPECTED_COUNTS = {
    "": 16,
    "PENDING": 2,  # Waiting x2; Report, Summary and Root count only in the upstream boxes, as in luigi
    "RUNNING": 1,
    "BATCH_RUNNING": 0,
    "DONE": 6,
    "FAILED": 3,
    "UPSTREAM_FAILED": 1,  # Report (behind Explode)
    "DISABLED": 1,
    "UPSTREAM_DISABLED": 2,  # Summary (behind Fragile) and Root (worst of its deps)
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    srv = start_pipeline_server(tmp_path_factory.mktemp("views"))
    yield srv
    srv.stop()


def shown_counts(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        ".count-box",
        "els => Object.fromEntries(els.map(e =>"
        " [e.dataset.status, e.querySelector('.count-number').textContent]))",
    )


GENERATION = "Number(document.querySelector('#last-refresh').dataset.generation)"


def row_ids(page: Any) -> set[str]:
    return set(
        page.eval_on_selector_all("#task-table tr.task-row", "rows => rows.map(r => r.dataset.taskId)")
    )


def api_count(server: UiServer, status: str, upstream: str = "") -> int:
    reply = server.call("task_list", status=status, upstream_status=upstream, limit=False)
    return len(reply)


def test_counts_match_the_scheduler(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    counts = shown_counts(page)
    assert counts == {k: str(v) for k, v in EXPECTED_COUNTS.items()}
    assert int(counts["FAILED"]) == api_count(server, "FAILED")
    assert int(counts["UPSTREAM_DISABLED"]) == api_count(server, "PENDING", "UPSTREAM_DISABLED")
    assert row_ids(page) == set(server.statuses())
    assert page.text_content("#task-summary") == "1\u201316 of 16 tasks"


def test_family_sidebar_counts(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    families = page.eval_on_selector_all(
        "#family-list .family[data-family]",
        "els => Object.fromEntries(els.map(e =>"
        " [e.dataset.family, e.querySelector('.family-count').textContent]))",
    )
    expected: dict[str, int] = {}
    for task in server.call("task_list", limit=False).values():
        expected[task["name"]] = expected.get(task["name"], 0) + 1
    assert families == {k: str(v) for k, v in expected.items()}
    assert families["Clean"] == "3" and families["Broken"] == "2"


def test_status_filter_narrows_the_table(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    page.click(".count-box[data-status=FAILED]")
    page.wait_for_function("location.hash.includes('status=FAILED')")
    page.wait_for_function("document.querySelectorAll('#task-table tr.task-row').length === 3")
    failed = {t for t, s in server.statuses().items() if s == "FAILED"}
    assert row_ids(page) == failed
    assert page.get_attribute(".count-box[data-status=FAILED]", "aria-pressed") == "true"


def test_upstream_filter_shows_upstream_status(page: Any, server: UiServer) -> None:
    open_ui(page, server, "status=UPSTREAM_FAILED")
    assert row_ids(page) == {server.task_id("Report_")}
    assert page.text_content("#task-table tr.task-row .badge") == "Upstream failed"


def test_search_narrows_table_and_counts(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    page.fill("#task-search", "clean")
    page.wait_for_function("location.hash.includes('search=clean')")
    page.wait_for_function("document.querySelectorAll('#task-table tr.task-row').length === 3")
    assert {r.split("_")[0] for r in row_ids(page)} == {"Clean"}
    counts = shown_counts(page)
    assert counts[""] == "3" and counts["DONE"] == "3" and counts["FAILED"] == "0"
    # Search terms all have to match, across name and parameters.
    page.fill("#task-search", "clean day=2")
    page.wait_for_function("document.querySelectorAll('#task-table tr.task-row').length === 1")
    assert row_ids(page) == {server.task_id("Clean_2")}


def test_family_filter(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    page.click("#family-list .family[data-family=Extract]")
    page.wait_for_function("location.hash.includes('family=Extract')")
    page.wait_for_function("document.querySelectorAll('#task-table tr.task-row').length === 3")
    assert {r.split("_")[0] for r in row_ids(page)} == {"Extract"}
    assert page.get_attribute("#family-list .family[data-family=Extract]", "aria-pressed") == "true"


def graph_nodes(page: Any) -> set[str]:
    return set(page.eval_on_selector_all("#graph-svg g.node", "ns => ns.map(n => n.dataset.taskId)"))


def graph_edges(page: Any) -> set[tuple[str, str]]:
    pairs = page.eval_on_selector_all(
        "#graph-svg path.edge", "es => es.map(e => [e.dataset.from, e.dataset.to])"
    )
    return {(a, b) for a, b in pairs}


def expected_edges(graph: dict[str, Any]) -> set[tuple[str, str]]:
    return {(tid, dep) for tid, node in graph.items() for dep in node["deps"] if dep in graph}


def test_graph_shows_nodes_and_edges_of_dep_graph(page: Any, server: UiServer) -> None:
    root = server.task_id("Root_")
    open_ui(page, server, f"tab=graph&task={root}")
    page.wait_for_selector("#graph-svg g.node")
    graph = server.call("dep_graph", task_id=root)
    assert graph_nodes(page) == set(graph) and len(graph) == 16
    assert graph_edges(page) == expected_edges(graph)
    # Coloured by status: the class names the status.
    explode = server.task_id("Explode_")
    assert "status-failed" in page.get_attribute(f"#graph-svg g.node[data-task-id='{explode}']", "class")
    # Layers: every edge points down, from a task to what it needs.
    ys = page.eval_on_selector_all(
        "#graph-svg g.node",
        "ns => Object.fromEntries(ns.map(n => [n.dataset.taskId, n.transform.baseVal[0].matrix.f]))",
    )
    assert all(ys[a] < ys[b] for a, b in graph_edges(page))


def test_graph_hide_done_and_inverted(page: Any, server: UiServer) -> None:
    root = server.task_id("Root_")
    open_ui(page, server, f"tab=graph&task={root}")
    page.wait_for_selector("#graph-svg g.node")
    page.check("#graph-hidedone")
    page.wait_for_function("location.hash.includes('hidedone=1')")
    without_done = server.call("dep_graph", task_id=root, include_done=False)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#graph-svg g.node').length === n", arg=len(without_done)
    )
    assert graph_nodes(page) == set(without_done)
    assert not any(s == "DONE" for t, s in server.statuses().items() if t in graph_nodes(page))

    extract = server.task_id("Extract_1")
    open_ui(page, server, f"tab=graph&task={extract}&inverse=1")
    expected = {extract, server.task_id("Clean_1"), root}
    # the page is the same one: the previous graph stays drawn until the new one replaces it
    page.wait_for_function(
        "(ids) => { const shown = [...document.querySelectorAll('#graph-svg g.node')]"
        ".map(n => n.dataset.taskId);"
        " return shown.length === ids.length && ids.every(i => shown.includes(i)); }",
        arg=sorted(expected),
    )
    assert page.is_checked("#graph-inverse")
    assert graph_nodes(page) == expected
    assert graph_edges(page) == expected_edges(server.call("inverse_dep_graph", task_id=extract))


def test_clicking_a_node_goes_to_that_task_and_back_returns(page: Any, server: UiServer) -> None:
    root = server.task_id("Root_")
    clean = server.task_id("Clean_1")
    open_ui(page, server, f"tab=graph&task={root}")
    page.wait_for_selector("#graph-svg g.node")
    page.click(f"#graph-svg g.node[data-task-id='{clean}']")
    page.wait_for_function(
        "(id) => new URLSearchParams(location.hash.slice(1)).get('task') === id", arg=clean
    )
    page.wait_for_function("document.querySelectorAll('#graph-svg g.node').length === 2")
    assert graph_nodes(page) == {clean, server.task_id("Extract_1")}
    assert page.text_content("#graph-info .task-title") == "Clean(day=1)"
    page.go_back()
    page.wait_for_function("document.querySelectorAll('#graph-svg g.node').length === 16")
    assert page.input_value("#graph-task") == root


def test_workers_tab(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=workers")
    workers = server.call("worker_list")
    assert len(workers) == 1
    w = workers[0]
    card = page.locator(".worker-card")
    assert card.count() == 1
    assert card.get_attribute("data-worker") == w["name"]
    fields = page.eval_on_selector_all(
        ".worker-card .field",
        "fs => Object.fromEntries(fs.map(f =>"
        " [f.querySelector('dt').textContent, f.querySelector('dd').textContent]))",
    )
    assert fields["Host"] == w["host"] and fields["PID"] == str(w["pid"]) and fields["User"] == w["username"]
    assert fields["Running"] == "1" and fields["Processes"] == "1"
    assert fields["Pending"] == str(w["num_pending"]) and fields["Unique pending"] == str(w["num_uniques"])
    assert page.locator(".worker-card .running-table tbody tr").get_attribute(
        "data-task-id"
    ) == server.task_id("LongRunning_")


def test_resources_tab(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=resources")
    usage = page.eval_on_selector_all(
        ".resource-card",
        "cs => Object.fromEntries(cs.map(c =>"
        " [c.dataset.resource, c.querySelector('.resource-usage').textContent]))",
    )
    assert usage == {"gpu": "1 of 2 used", "db": "0 of 5 used"}
    holders = page.eval_on_selector_all(
        ".resource-card[data-resource=gpu] .holders li", "ls => ls.map(l => l.dataset.taskId)"
    )
    assert holders == [server.task_id("LongRunning_")]


def test_header_pause_and_history(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    assert server.call("is_pause_enabled") == {"enabled": True}
    assert page.is_visible("#pause-toggle")
    assert page.text_content("#pause-toggle") == "Pause scheduling"
    assert server.call("has_task_history") is False
    assert not page.is_visible("#history-link")


def test_link_with_state_restores_the_view(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=tasks&status=FAILED&search=broken&sort=name")
    page.wait_for_function("document.querySelectorAll('#task-table tr.task-row').length === 2")
    assert page.input_value("#task-search") == "broken"
    assert page.get_attribute(".count-box[data-status=FAILED]", "aria-pressed") == "true"
    order = page.eval_on_selector_all("#task-table tr.task-row", "rows => rows.map(r => r.dataset.taskId)")
    assert order == [server.task_id("Broken_1"), server.task_id("Broken_2")]
    assert page.get_attribute("#tab-tasks", "aria-current") == "page"

    # The back button walks through earlier views.
    page.click(".count-box[data-status=DONE]")
    page.wait_for_function("location.hash.includes('status=DONE')")
    page.go_back()
    page.wait_for_function("location.hash.includes('status=FAILED')")
    page.wait_for_function(
        "document.querySelector('.count-box[data-status=FAILED]').getAttribute('aria-pressed') === 'true'"
    )

    root = server.task_id("Root_")
    open_ui(page, server, f"tab=graph&task={root}&hidedone=1")
    page.wait_for_selector("#graph-svg g.node")
    assert page.is_checked("#graph-hidedone") and not page.is_checked("#graph-inverse")
    assert page.get_attribute("#tab-graph", "aria-current") == "page"


def test_refresh_keeps_filter_search_focus_and_scroll(page: Any, server: UiServer) -> None:
    page.set_viewport_size({"width": 1000, "height": 300})
    open_ui(page, server, "status=DONE")
    page.fill("#task-search", "e")
    page.wait_for_function("location.hash.includes('search=e')")
    page.wait_for_function("document.querySelectorAll('#task-table tr.task-row').length === 6")
    settle(page)
    page.focus("#task-search")
    # the rows are in; wait until layout has made the page taller than the window, then scroll
    page.wait_for_function("document.documentElement.scrollHeight > window.innerHeight + 120")
    page.evaluate("window.scrollTo(0, 100)")
    page.wait_for_function("window.scrollY > 0")
    scroll = page.evaluate("window.scrollY")
    before = page.evaluate(GENERATION)
    # A click from script, as the timer does it: focus stays in the search box.
    page.evaluate("document.querySelector('#refresh-now').click()")
    wait_for(lambda: page.evaluate(GENERATION) > before, what="another refresh")
    settle(page)
    assert page.evaluate("window.scrollY") == scroll
    assert page.evaluate("document.activeElement.id") == "task-search"
    assert page.input_value("#task-search") == "e"
    assert len(row_ids(page)) == 6
    assert "status=DONE" in page.evaluate("location.hash")


def test_a_scroll_made_while_a_refresh_is_in_flight_is_kept(page: Any, server: UiServer) -> None:
    """The reader scrolls while the data is on its way: the re-render must not undo that."""
    page.set_viewport_size({"width": 1000, "height": 300})
    open_ui(page, server, "status=DONE")
    settle(page)
    page.wait_for_function("document.documentElement.scrollHeight > window.innerHeight + 200")
    held: list[Any] = []
    releasing = False

    def hold(route: Any) -> None:
        if releasing:
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/task_list*", hold)
    before = page.evaluate(GENERATION)
    page.evaluate("document.querySelector('#refresh-now').click()")
    # the browser only reports requests while Playwright is called, hence the short waits
    wait_for(lambda: page.wait_for_timeout(20) or held, what="the refresh's task_list request")
    assert page.evaluate("document.body.dataset.refreshing") == "true"
    page.evaluate("window.scrollTo(0, 150)")
    page.wait_for_function("window.scrollY > 100")
    scroll = page.evaluate("window.scrollY")
    releasing = True
    for route in held:
        route.continue_()
    wait_for(lambda: page.evaluate(GENERATION) > before, what="the held refresh to land")
    settle(page)
    assert page.evaluate("window.scrollY") == scroll


def test_assets_are_served_locally_with_validators(page: Any, server: UiServer, probe: Any) -> None:
    import requests

    open_ui(page, server, "tab=workers")
    page.click("#tab-graph")
    page.wait_for_function("location.hash.includes('tab=graph')")
    assert probe.requests
    assert all(u.startswith(server.base) for u in probe.requests), "the page fetched from elsewhere"
    for asset in (
        "static/visualiser/index.html",
        "static/visualiser/js/app.js",
        "static/visualiser/css/visualiser.css",
    ):
        first = requests.get(server.base + asset, timeout=10)
        assert first.status_code == 200
        etag = first.headers.get("Etag")
        assert etag, f"{asset} has no validator"
        again = requests.get(server.base + asset, headers={"If-None-Match": etag}, timeout=10)
        assert again.status_code == 304


def test_static_sources_use_relative_urls_only() -> None:
    root = Path(__file__).resolve().parents[3] / "luigid" / "web" / "static" / "visualiser"
    absolute = re.compile(r"""(https?:)?//[\w.-]+|["'`(]/[\w]""")
    for path in [root / "index.html", *root.glob("js/*.js"), *root.glob("css/*.css")]:
        # The SVG namespace is a name, not a fetched URL.
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")
        found = absolute.search(text)
        assert found is None, f"{path.name} holds an absolute URL: {found.group(0)!r}"


def test_works_behind_a_reverse_proxy_under_a_prefix(page: Any, server: UiServer, probe: Any) -> None:
    from tests.web.ui.prefix_proxy import PrefixProxy

    with PrefixProxy("/luigi/", server.base) as proxy:
        page.goto(proxy.base + "luigi/")  # luigid's redirect to the UI is relative too
        page.wait_for_selector("body[data-loaded=true]")
        assert page.url.startswith(proxy.base + "luigi/static/visualiser/index.html")
        assert shown_counts(page)["FAILED"] == "3"
        page.click("#tab-graph")
        page.fill("#graph-task", server.task_id("Root_"))
        page.click(".graph-controls button[type=submit]")
        page.wait_for_selector("#graph-svg g.node")
        assert all(u.startswith(proxy.base + "luigi/") for u in probe.requests)
