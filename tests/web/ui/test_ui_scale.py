"""Many tasks and big graphs: the page asks for counts and bounded lists, pages its table,
honours the scheduler's max_shown_tasks and max_graph_nodes, and lays out a graph of a
few hundred tasks in layers without overlaps."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.ui.bulk_tasks import Bulk, Chain, FanTop, Finished, schedule
from tests.web.ui.support import BASE_CONFIG, UiServer, open_ui, start_luigid

pytestmark = pytest.mark.browser

BULK = 1050
PAGE_SIZE = 100
NODE_W = 170


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    srv = start_luigid(tmp_path_factory.mktemp("big"), BASE_CONFIG)
    try:
        schedule(srv.port, [Bulk(n=n) for n in range(BULK)] + [FanTop()])
    except BaseException:
        srv.stop()
        raise
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    config = "[scheduler]\nworker_disconnect_delay = 3600\nmax_shown_tasks = 3\nmax_graph_nodes = 4\n"
    srv = start_luigid(tmp_path_factory.mktemp("limited"), config)
    try:
        schedule(srv.port, [Chain(n=6)] + [Finished(n=n) for n in range(5)])
    except BaseException:
        srv.stop()
        raise
    yield srv
    srv.stop()


def rows(page: Any) -> int:
    return page.locator("#task-table tr.task-row").count()


def test_too_many_tasks_shows_the_count_not_the_rows(page: Any, big: UiServer) -> None:
    total = BULK + 1 + 20 + 20 * 15
    sizes: list[int] = []

    def on_response(resp: Any) -> None:
        if "/api/task_list" in resp.url:
            sizes.append(len(resp.json()["response"]))

    page.on("response", on_response)
    open_ui(page, big)
    assert page.text_content(".count-box[data-status=''] .count-number") == f"{total:,}"
    assert page.text_content(".count-box[data-status=PENDING] .count-number") == f"{total:,}"
    assert page.text_content("#task-notice .over-count") == f"{total:,}"
    assert rows(page) == 0
    assert "Too many tasks to group by family" in page.text_content("#family-list")
    # Pending tasks are too many to work out upstream status cheaply: shown as unknown.
    assert page.text_content(".count-box[data-status=UPSTREAM_FAILED] .count-number") == "?"
    # Every answer the page got was a count or a bounded list.
    assert sizes and max(sizes) <= 1000


def test_family_from_url_narrows_on_the_server(page: Any, big: UiServer) -> None:
    open_ui(page, big, "family=FanMid")
    page.wait_for_function("document.querySelectorAll('#task-table tr.task-row').length === 20")
    assert page.text_content("#task-summary") == "1\u201320 of 20 tasks"


def test_table_pages_through_a_search(page: Any, big: UiServer) -> None:
    # 'bulk n=1' matches n=1, 10-19, 100-199 and 1000-1049.
    expected = 1 + 10 + 100 + (BULK - 1000)
    open_ui(page, big, "search=" + "bulk%20n%3D1")
    assert rows(page) == PAGE_SIZE
    assert page.text_content("#task-summary") == f"1\u2013{PAGE_SIZE} of {expected} tasks"
    page.click(".pager button:has-text('Next')")
    page.wait_for_function("location.hash.includes('page=2')")
    page.wait_for_function(
        f"document.querySelectorAll('#task-table tr.task-row').length === {expected - PAGE_SIZE}"
    )
    assert page.text_content(".pager .page-info") == "Page 2 of 2"


def test_graph_of_hundreds_of_tasks_is_layered_without_overlaps(page: Any, big: UiServer) -> None:
    top = big.task_id("FanTop_")
    open_ui(page, big, f"tab=graph&task={top}")
    page.wait_for_selector("#graph-svg g.node")
    graph = big.call("dep_graph", task_id=top)
    assert len(graph) == 321
    pos = page.eval_on_selector_all(
        "#graph-svg g.node",
        "ns => Object.fromEntries(ns.map(n => [n.dataset.taskId,"
        " [n.transform.baseVal[0].matrix.e, n.transform.baseVal[0].matrix.f]]))",
    )
    assert set(pos) == set(graph)
    by_row: dict[float, list[float]] = {}
    for x, y in pos.values():
        by_row.setdefault(y, []).append(x)
    for xs in by_row.values():
        xs.sort()
        assert all(b - a >= NODE_W for a, b in itertools.pairwise(xs)), "nodes overlap"
    edges = page.eval_on_selector_all(
        "#graph-svg path.edge", "es => es.map(e => [e.dataset.from, e.dataset.to])"
    )
    assert len(edges) == 20 + 20 * 15
    assert all(pos[a][1] < pos[b][1] for a, b in edges), "an edge points up"


def test_scheduler_max_shown_tasks_is_honoured(page: Any, limited: UiServer) -> None:
    open_ui(page, limited, "status=DONE")
    assert page.text_content(".count-box[data-status=DONE] .count-number") == "5"
    assert page.text_content("#task-notice .over-count") == "5"
    assert rows(page) == 0
    assert limited.call("task_list", status="DONE") == {"num_tasks": 5}


def test_scheduler_max_graph_nodes_is_honoured(page: Any, limited: UiServer) -> None:
    top = limited.task_id("Chain_6")
    open_ui(page, limited, f"tab=graph&task={top}")
    page.wait_for_selector("#graph-svg g.node")
    assert page.locator("#graph-svg g.node").count() == len(limited.call("dep_graph", task_id=top)) == 4
    assert "max_graph_nodes" in page.text_content("#graph-notice")
