"""Links in luigi 3.8.1's fragment format open the same view in luigid's visualiser.

Users keep bookmarks and chat links that luigi's own page built, e.g.
``index.html#tab=graph&taskId=Root_99914b932b&hideDone=1`` or
``#tab=tasks&statuses=["FAILED","DISABLED"]&order=1,desc&length=25``. Every key luigi's
visualiser reads must open the same view here; several status boxes can be on at once, and
each box counts what luigi's box counts (Pending leaves out the tasks that are upstream
failed or upstream disabled: luigi shows those under their own boxes only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.web.ui import support as ui

pytestmark = pytest.mark.browser

ROWS = "#task-table tr.task-row"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    srv = ui.start_pipeline_server(tmp_path_factory.mktemp("luigi-links"))
    yield srv
    srv.stop()


@pytest.fixture
def open_at(page: Any, server: Any) -> Any:
    """Open the visualiser at a fragment and wait until it has drawn what it loaded."""

    def go(fragment: str) -> None:
        ui.open_ui(page, server, fragment)
        ui.settle(page)

    return go


def row_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(ROWS, "rows => rows.map(r => r.dataset.taskId)")


def graph_nodes(page: Any) -> set[str]:
    return set(page.eval_on_selector_all("#graph-svg g.node", "ns => ns.map(n => n.dataset.taskId)"))


def shown_counts(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        ".count-box",
        "els => Object.fromEntries(els.map(e =>"
        " [e.dataset.status, e.querySelector('.count-number').textContent]))",
    )


def pressed_boxes(page: Any) -> set[str]:
    return set(
        page.eval_on_selector_all(".count-box[aria-pressed=true]", "els => els.map(e => e.dataset.status)")
    )


def ids_with(server: Any, *statuses: str) -> set[str]:
    return {t for t, s in server.statuses().items() if s in statuses}


def upstream_ids(server: Any, upstream: str) -> set[str]:
    return set(server.call("task_list", status="PENDING", upstream_status=upstream, limit=False))


def statuses_param(*names: str) -> str:
    """luigi writes its status boxes as a JSON list, URL-encoded by URI.js."""
    return "statuses=" + quote(json.dumps(list(names), separators=(",", ":")))


# ------------------------------------------------------------------ graph tab


def test_luigi_graph_link_with_task_id_and_hide_done(page: Any, server: Any, open_at: Any) -> None:
    # The link luigi's task table and worker cards build for a task's graph.
    root = server.task_id("Root_")
    open_at(f"tab=graph&taskId={quote(root)}&hideDone=1")
    assert page.get_attribute("#tab-graph", "aria-current") == "page"
    assert page.input_value("#graph-task") == root
    assert page.is_checked("#graph-hidedone") and not page.is_checked("#graph-inverse")
    page.wait_for_selector("#graph-svg g.node")
    without_done = server.call("dep_graph", task_id=root, include_done=False)
    assert graph_nodes(page) == set(without_done)
    assert len(without_done) < len(server.call("dep_graph", task_id=root))

    # Unticking "Hide done" really shows them again: the luigi key does not linger.
    page.uncheck("#graph-hidedone")
    full = server.call("dep_graph", task_id=root)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#graph-svg g.node').length === n", arg=len(full)
    )
    assert graph_nodes(page) == set(full)
    assert "hideDone" not in page.evaluate("location.hash")


@pytest.mark.parametrize("vis_type", ["svg", "d3"])
def test_luigi_graph_link_inverted_with_any_vis_type(
    page: Any, server: Any, open_at: Any, vis_type: str
) -> None:
    extract = server.task_id("Extract_1")
    open_at(f"tab=graph&taskId={quote(extract)}&invert=1&visType={vis_type}")
    assert page.input_value("#graph-task") == extract
    assert page.is_checked("#graph-inverse")
    page.wait_for_selector("#graph-svg g.node")
    assert graph_nodes(page) == set(server.call("inverse_dep_graph", task_id=extract))
    assert graph_nodes(page) == {extract, server.task_id("Clean_1"), server.task_id("Root_")}


# ------------------------------------------------------------------ other tabs


@pytest.mark.parametrize("fragment", ["tab=resource", 'tab=resource&resources=["gpu"]'])
def test_luigi_resources_menu_link(page: Any, open_at: Any, fragment: str) -> None:
    # luigi's Resources menu entry links to tab=resource (its page then writes tab=resources);
    # resources= lists the panels luigi had open: ours shows every resource anyway.
    open_at(fragment)
    assert page.get_attribute("#tab-resources", "aria-current") == "page"
    assert page.is_visible("#view-resources")
    assert page.locator(".resource-card").count() == 2


# ------------------------------------------------------------------ task list


def test_luigi_statuses_list_turns_on_several_boxes(page: Any, server: Any, open_at: Any) -> None:
    open_at("tab=tasks&" + statuses_param("FAILED", "DISABLED"))
    assert pressed_boxes(page) == {"FAILED", "DISABLED"}
    assert set(row_ids(page)) == ids_with(server, "FAILED", "DISABLED")
    assert len(row_ids(page)) == 4


def test_luigi_statuses_with_upstream_boxes(page: Any, server: Any, open_at: Any) -> None:
    open_at(statuses_param("UPSTREAM_FAILED", "UPSTREAM_DISABLED"))
    expected = upstream_ids(server, "UPSTREAM_FAILED") | upstream_ids(server, "UPSTREAM_DISABLED")
    assert set(row_ids(page)) == expected and len(expected) == 3
    badges = page.eval_on_selector_all(f"{ROWS} .badge", "bs => bs.map(b => b.textContent)")
    assert sorted(badges) == ["Upstream disabled", "Upstream disabled", "Upstream failed"]


def test_luigi_search_order_and_length(page: Any, server: Any, open_at: Any) -> None:
    # luigi's table filter (search__search), sorted on its Name column (1) descending.
    open_at("tab=tasks&search__search=broken&filterOnServer=1&order=1,desc")
    assert page.input_value("#task-search") == "broken"
    assert row_ids(page) == [server.task_id("Broken_2"), server.task_id("Broken_1")]
    assert page.get_attribute("#task-table th[aria-sort=descending] .sort", "data-sort") == "name"

    # luigi's DataTables page length; family is the sidebar selection in both UIs.
    open_at("tab=tasks&family=Extract&order=1,desc&length=2")
    extract = [server.task_id(f"Extract_{d}") for d in (3, 2, 1)]
    assert row_ids(page) == extract[:2]
    assert page.text_content("#task-summary") == "1\u20132 of 3 tasks"
    assert page.text_content(".pager .page-info") == "Page 1 of 2"
    page.click(".pager button:has-text('Next')")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 1")
    assert row_ids(page) == extract[2:]


@pytest.mark.parametrize(
    ("order", "column", "direction"),
    [
        ("3,asc", "priority", "ascending"),
        ("4,asc", "updated", "ascending"),
        ("0,desc", "status", "descending"),
        # DataTables' own form of the same setting
        ("[[3,%22desc%22]]", "priority", "descending"),
    ],
)
def test_luigi_order_columns(page: Any, open_at: Any, order: str, column: str, direction: str) -> None:
    open_at(f"tab=tasks&order={order}")
    sorted_on = page.locator("#task-table th[aria-sort]:not([aria-sort=none])")
    assert sorted_on.get_attribute("aria-sort") == direction
    assert sorted_on.locator(".sort").get_attribute("data-sort") == column


def test_luigi_bookmark_with_every_task_list_key(page: Any, server: Any, open_at: Any) -> None:
    open_at(
        "tab=tasks&"
        + statuses_param("DONE", "FAILED")
        + "&family=Clean&search__search=clean&filterOnServer=1&order=1,asc&length=10"
    )
    assert pressed_boxes(page) == {"DONE", "FAILED"}
    assert page.input_value("#task-search") == "clean"
    assert page.get_attribute("#family-list .family[data-family=Clean]", "aria-pressed") == "true"
    assert row_ids(page) == [server.task_id(f"Clean_{d}") for d in (1, 2, 3)]


# ------------------------------------------------------------------ several status boxes


def test_clicking_boxes_toggles_each_one(page: Any, server: Any, open_at: Any) -> None:
    open_at("status=FAILED")
    page.click(".count-box[data-status=DISABLED]")
    page.wait_for_function("location.hash.includes('status=FAILED,DISABLED')")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 4")
    assert pressed_boxes(page) == {"FAILED", "DISABLED"}
    assert set(row_ids(page)) == ids_with(server, "FAILED", "DISABLED")

    page.click(".count-box[data-status=FAILED]")
    page.wait_for_function("new URLSearchParams(location.hash.slice(1)).get('status') === 'DISABLED'")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 1")
    assert pressed_boxes(page) == {"DISABLED"}

    # "All tasks" clears every box.
    page.click(".count-box[data-status='']")
    page.wait_for_function("!location.hash.includes('status=')")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 16")
    assert pressed_boxes(page) == {""}


@pytest.mark.parametrize("fragment", ["status=FAILED,DISABLED", "status=DISABLED&status=FAILED"])
def test_our_own_multi_status_forms(page: Any, server: Any, open_at: Any, fragment: str) -> None:
    open_at(fragment)
    assert pressed_boxes(page) == {"FAILED", "DISABLED"}
    assert set(row_ids(page)) == ids_with(server, "FAILED", "DISABLED")


def test_several_boxes_with_search_and_paging(page: Any, server: Any, open_at: Any) -> None:
    open_at("status=DONE,FAILED&length=4")
    done_or_failed = ids_with(server, "DONE", "FAILED")
    assert len(done_or_failed) == 9
    assert page.text_content("#task-summary") == "1\u20134 of 9 tasks"
    seen = set(row_ids(page))
    for page_no in (2, 3):
        page.click(".pager button:has-text('Next')")
        page.wait_for_function(f"location.hash.includes('page={page_no}')")
        page.wait_for_function(
            "(n) => document.querySelector('.pager .page-info').textContent === `Page ${n} of 3`", arg=page_no
        )
        seen |= set(row_ids(page))
    assert seen == done_or_failed

    # The search still runs on the server, across both boxes; the counts follow it.
    page.fill("#task-search", "day=2")
    page.wait_for_function("location.hash.includes('search=day')")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 2")
    assert set(row_ids(page)) == {server.task_id("Clean_2"), server.task_id("Extract_2")}
    counts = shown_counts(page)
    assert counts["DONE"] == "2" and counts["FAILED"] == "0"


# ------------------------------------------------------------------ status counts


def test_pending_box_counts_as_luigi_does(page: Any, server: Any, open_at: Any) -> None:
    open_at("")
    pending = ids_with(server, "PENDING")
    upstream_failed = upstream_ids(server, "UPSTREAM_FAILED")
    upstream_disabled = upstream_ids(server, "UPSTREAM_DISABLED")
    plain = pending - upstream_failed - upstream_disabled
    # Waiting x2 only: Report is upstream failed, Summary and Root upstream disabled.
    assert {t.split("_")[0] for t in plain} == {"Waiting"} and len(plain) == 2
    counts = shown_counts(page)
    assert counts["PENDING"] == str(len(plain))
    assert counts["UPSTREAM_FAILED"] == str(len(upstream_failed))
    assert counts["UPSTREAM_DISABLED"] == str(len(upstream_disabled))
    # The boxes add up: every task counted once.
    assert sum(int(v) for k, v in counts.items() if k) == int(counts[""]) == len(server.statuses())

    # In the unfiltered list each task wears the label of the box that counts it.
    report = server.task_id("Report_")
    assert page.text_content(f"{ROWS}[data-task-id='{report}'] .badge") == "Upstream failed"

    # The Pending box lists just the tasks it counts.
    page.click(".count-box[data-status=PENDING]")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === {len(plain)}")
    assert set(row_ids(page)) == plain
    assert page.text_content("#task-summary") == f"1\u2013{len(plain)} of {len(plain)} tasks"


# ------------------------------------------------------------------ many tasks

BULK = 1100  # pending tasks: more than the page's 1,000-task lists


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Many plain pending tasks, three failed ones and three pending tasks behind them."""
    srv = ui.start_luigid(tmp_path_factory.mktemp("luigi-links-big"), ui.BASE_CONFIG)
    try:
        worker = "bulk-worker"
        for n in range(BULK):
            srv.call("add_task", worker=worker, task_id=f"Bulk_{n}", family="Bulk", params={"n": str(n)})
        for k in range(3):
            srv.call("add_task", worker=worker, task_id=f"Bad_{k}", family="Bad", params={"k": str(k)})
            srv.call("add_task", worker=worker, task_id=f"Bad_{k}", status="FAILED", family="Bad")
            srv.call(
                "add_task",
                worker=worker,
                task_id=f"After_{k}",
                family="After",
                params={"k": str(k)},
                deps=[f"Bad_{k}"],
            )
    except BaseException:
        srv.stop()
        raise
    yield srv
    srv.stop()


def test_pending_box_past_a_thousand_counts_as_luigi_does(page: Any, big: Any) -> None:
    # More pending tasks than the page could once sort out: the server's counters still put
    # each upstream failed task in its own box, as luigi's page does, with no "?".
    ui.open_ui(page, big)
    ui.settle(page)
    counts = shown_counts(page)
    assert (counts["PENDING"], counts["UPSTREAM_FAILED"], counts["FAILED"]) == (f"{BULK:,}", "3", "3")
    assert not page.get_attribute(".count-box[data-status=PENDING] .count-number", "title")

    # Narrowed by a search, the counts are of the tasks that match.
    ui.open_ui(page, big, "search=k%3D")
    ui.settle(page)
    counts = shown_counts(page)
    assert (counts["PENDING"], counts["UPSTREAM_FAILED"], counts["FAILED"]) == ("0", "3", "3")


def test_several_boxes_past_the_page_limit(page: Any, big: Any) -> None:
    # Too many to list: the family narrows each box on the server.
    ui.open_ui(page, big, "status=PENDING,FAILED&family=Bad")
    ui.settle(page)
    assert sorted(row_ids(page)) == ["Bad_0", "Bad_1", "Bad_2"]
    ui.open_ui(page, big, "tab=tasks&" + statuses_param("UPSTREAM_FAILED", "DONE") + "&family=After")
    ui.settle(page)
    assert sorted(row_ids(page)) == ["After_0", "After_1", "After_2"]
    badges = page.eval_on_selector_all(f"{ROWS} .badge", "bs => bs.map(b => b.textContent)")
    assert badges == ["Upstream failed"] * 3

    # A search across two boxes, paged through on the page's side.
    # 'bulk n=1' matches n=1, 10-19, 100-199 and 1000-1099.
    expected = 1 + 10 + 100 + (BULK - 1000)
    ui.open_ui(page, big, "status=PENDING,FAILED&search=bulk%20n%3D1&length=50")
    ui.settle(page)
    assert page.text_content("#task-summary") == f"1\u201350 of {expected} tasks"
    pages = -(-expected // 50)
    for n in range(2, pages + 1):
        page.click(".pager button:has-text('Next')")
        page.wait_for_function(
            "([n, of]) => document.querySelector('.pager .page-info').textContent === `Page ${n} of ${of}`",
            arg=[n, pages],
        )
    assert len(row_ids(page)) == expected - 50 * (pages - 1)
