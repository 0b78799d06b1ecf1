"""Many tasks and big graphs, on a real luigid started from a luigi state file of some 25k
tasks (scale_state.py): every status count (upstream ones included), family counts and a
page of the chosen status come from luigid's own ui/tasks endpoint, paged, sorted and
searched on the server; a 5,000-task DAG is drawn whole, panned, and collapsed by family;
the scheduler's max_shown_tasks and max_graph_nodes are honoured."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.ui import scale_state
from tests.web.ui.bulk_tasks import Chain, Finished, schedule
from tests.web.ui.support import BASE_CONFIG, UiServer, open_ui, settle, start_luigid
from tests.web.ui.test_ui_luigi_links import shown_counts

pytestmark = pytest.mark.browser

NODE_W = 170
ROWS = "#task-table tr.task-row"


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    workdir = tmp_path_factory.mktemp("huge")
    subprocess.run(
        [sys.executable, str(scale_state.__file__), str(workdir / "state.pickle")],
        cwd=workdir,
        env=dict(os.environ, LUIGI_CONFIG_PATH=str(workdir / "none.cfg")),
        check=True,
        timeout=300,
    )
    srv = start_luigid(workdir, BASE_CONFIG)
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


def row_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(ROWS, "rs => rs.map(r => r.dataset.taskId)")


def newest_first(server: UiServer, **task_list: Any) -> list[str]:
    """Task ids as luigi's task_list gives them, sorted as the page sorts by default."""
    tasks = server.call("task_list", limit=False, **task_list)
    return [
        tid for tid, _ in sorted(tasks.items(), key=lambda kv: (kv[1]["last_updated"], kv[0]), reverse=True)
    ]


def test_every_count_and_the_first_page_at_25k_tasks(page: Any, probe: Any, huge: UiServer) -> None:
    replies: list[int] = []
    page.on("response", lambda r: replies.append(len(r.body())) if "/ui/tasks" in r.url else None)
    open_ui(page, huge)
    settle(page)
    counts = shown_counts(page)
    assert counts[""] == f"{scale_state.TOTAL:,}"
    for box, n in scale_state.BOXES.items():
        assert counts[box] == f"{n:,}", box
    assert "?" not in page.text_content(".counts")
    # the first page, newest update first, as luigi's task_list has them
    assert row_ids(page) == newest_first(huge)[:100]
    assert page.text_content("#task-summary") == f"1\u2013100 of {scale_state.TOTAL:,} tasks"
    families = page.eval_on_selector_all(
        "#family-list button.family",
        "bs => Object.fromEntries(bs.map(b =>"
        " [b.dataset.family, b.querySelector('.family-count').textContent]))",
    )
    assert families == {f: f"{n:,}" for f, n in scale_state.COUNTS.items()}
    assert page.text_content("#task-notice") == ""
    # no reply held more than a page, and luigi's task_list was never asked for the tasks
    assert replies and max(replies) < 200_000
    assert not [u for u in probe.requests if "/api/task_list" in u]


def test_paging_sorting_and_search_run_on_the_server(page: Any, huge: UiServer) -> None:
    open_ui(page, huge, "status=PENDING&length=50&page=3")
    settle(page)
    pending = newest_first(huge, status="PENDING", upstream_status="")
    upstream = set(huge.call("task_list", status="PENDING", upstream_status="UPSTREAM_FAILED", limit=False))
    upstream |= set(
        huge.call("task_list", status="PENDING", upstream_status="UPSTREAM_DISABLED", limit=False)
    )
    pending = [t for t in pending if t not in upstream]
    assert row_ids(page) == pending[100:150]
    assert page.text_content(".pager .page-info") == f"Page 3 of {-(-len(pending) // 50)}"
    page.click(".pager button:has-text('Next')")
    page.wait_for_function("location.hash.includes('page=4')")
    settle(page)
    assert row_ids(page) == pending[150:200]

    # sorted by name on the server, across every page
    open_ui(page, huge, "status=UPSTREAM_DISABLED&sort=name&length=25&page=2")
    settle(page)
    names = sorted(f"waiter(n={n})" for n in range(scale_state.COUNTS["Waiter"]))
    assert [i.replace("Waiter_", "waiter(n=") + ")" for i in row_ids(page)] == names[25:50]
    badges = page.eval_on_selector_all(f"{ROWS} .badge", "bs => bs.map(b => b.textContent)")
    assert set(badges) == {"Upstream disabled"}

    # a search over every task: counts and families of the matches
    open_ui(page, huge, "status=")
    settle(page)
    page.fill("#task-search", "consumer n=19")
    page.wait_for_function("location.hash.includes('search=')")
    page.wait_for_function("document.querySelector('#task-summary').textContent.endsWith(' of 111 tasks')")
    matches = 1 + 10 + 100  # n=19, 190-199, 1900-1999
    counts = shown_counts(page)
    assert counts[""] == str(matches) and counts["UPSTREAM_FAILED"] == str(matches)
    assert page.text_content("#task-summary") == f"1\u2013100 of {matches} tasks"
    assert page.eval_on_selector_all("#family-list button.family", "bs => bs.map(b => b.dataset.family)") == [
        "Consumer"
    ]


def test_a_family_narrows_the_list(page: Any, huge: UiServer) -> None:
    open_ui(page, huge)
    settle(page)
    page.click("#family-list button.family[data-family=Waiter]")
    page.wait_for_function("location.hash.includes('family=Waiter')")
    settle(page)
    assert page.text_content("#task-summary") == "1\u2013100 of 500 tasks"
    assert all(i.startswith("Waiter_") for i in row_ids(page))


def test_a_5000_task_graph_is_drawn_whole_in_layers(page: Any, huge: UiServer) -> None:
    open_ui(page, huge, "tab=graph&task=Top_0")
    page.wait_for_function(
        f"document.querySelectorAll('#graph-svg g.node').length === {scale_state.GRAPH_NODES}", timeout=60_000
    )
    assert page.locator("#graph-svg path.edge").count() == scale_state.GRAPH_EDGES
    assert page.get_attribute("#graph-scroll", "data-layout-ms") is not None
    pos = page.eval_on_selector_all(
        "#graph-svg g.node",
        "ns => Object.fromEntries(ns.map(n => [n.dataset.taskId,"
        " [n.transform.baseVal[0].matrix.e, n.transform.baseVal[0].matrix.f]]))",
    )
    by_row: dict[float, list[float]] = {}
    for x, y in pos.values():
        by_row.setdefault(y, []).append(x)
    for xs in by_row.values():
        xs.sort()
        assert all(b - a >= NODE_W for a, b in itertools.pairwise(xs)), "nodes overlap"
    edges = page.eval_on_selector_all(
        "#graph-svg path.edge", "es => es.map(e => [e.dataset.from, e.dataset.to])"
    )
    assert all(pos[a][1] < pos[b][1] for a, b in edges), "an edge points up"

    # dragging the background pans the view
    box = page.locator("#graph-scroll").bounding_box()
    x, y = box["x"] + 5, box["y"] + box["height"] / 2  # the margin left of the nodes
    before = page.eval_on_selector("#graph-scroll", "s => [s.scrollLeft, s.scrollTop]")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 100, y - 200, steps=5)  # dragging up scrolls down
    page.mouse.up()
    after = page.eval_on_selector("#graph-scroll", "s => [s.scrollLeft, s.scrollTop]")
    assert after[1] == before[1] + 200


def test_a_graph_collapses_into_one_node_per_family(page: Any, huge: UiServer) -> None:
    open_ui(page, huge, "tab=graph&task=Top_0&collapse=1")
    page.wait_for_function("document.querySelectorAll('#graph-svg g.node').length === 3")
    assert page.is_checked("#graph-collapse")
    labels = page.eval_on_selector_all("#graph-svg g.node title", "ts => ts.map(t => t.textContent)")
    assert sorted(label.split("\n")[0] for label in labels) == [
        "Layer1: 50 tasks",
        f"Layer2: {scale_state.LAYER2} tasks",
        "Top: 1 task",
    ]
    assert page.locator("#graph-svg path.edge").count() == 2
    page.click("#graph-svg g.node[data-family=Layer1]")
    page.wait_for_function(
        "new URLSearchParams(location.hash.slice(1)).get('family') === 'Layer1'"
        " && !location.hash.includes('tab=graph')"  # the task list is the default tab
    )
    settle(page)
    assert page.text_content("#task-summary") == "1\u201350 of 50 tasks"


def test_scheduler_max_shown_tasks_bounds_each_page(page: Any, limited: UiServer) -> None:
    open_ui(page, limited, "status=DONE")
    settle(page)
    assert page.text_content(".count-box[data-status=DONE] .count-number") == "5"
    assert len(row_ids(page)) == 3
    assert "max_shown_tasks" in page.text_content("#task-notice")
    assert page.text_content(".pager .page-info") == "Page 1 of 2"
    assert limited.call("task_list", status="DONE") == {"num_tasks": 5}


def test_scheduler_max_graph_nodes_is_honoured(page: Any, limited: UiServer) -> None:
    top = limited.task_id("Chain_6")
    open_ui(page, limited, f"tab=graph&task={top}")
    page.wait_for_selector("#graph-svg g.node")
    assert page.locator("#graph-svg g.node").count() == len(limited.call("dep_graph", task_id=top)) == 4
    assert "max_graph_nodes" in page.text_content("#graph-notice")
