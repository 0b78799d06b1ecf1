"""Parameter visibilities in listings, and the max_shown_tasks / max_graph_nodes limits."""

from __future__ import annotations

from collections.abc import Callable

from luigid.scheduler import Scheduler

from .support import Clock, add

Make = Callable[..., Scheduler]

PARAMS = {"public": "a", "hidden": "b", "private": "c"}
VISIBILITY = {"public": 0, "hidden": 1, "private": 2}


def test_only_public_params_are_listed(sched: Scheduler) -> None:
    add(sched, "V_1", params=PARAMS, param_visibilities=VISIBILITY)
    add(sched, "W_1", params=PARAMS, param_visibilities=VISIBILITY, deps=["V_1"])
    assert sched.task_list()["V_1"]["params"] == {"public": "a"}
    assert sched.task_list()["V_1"]["display_name"] == "V(public=a)"
    assert sched.graph()["V_1"]["params"] == {"public": "a"}
    assert sched.dep_graph(task_id="W_1")["V_1"]["params"] == {"public": "a"}
    assert sched.task_search(task_str="V_1")["PENDING"]["V_1"]["params"] == {"public": "a"}
    (entry,) = sched.worker_list()
    assert entry["name"] == "w1"


def test_search_only_sees_public_params(sched: Scheduler) -> None:
    add(sched, "V_1", params=PARAMS, param_visibilities=VISIBILITY)
    assert set(sched.task_list(search="public=a")) == {"V_1"}
    assert sched.task_list(search="private") == {}
    assert sched.task_list(search="hidden=b") == {}


def test_fetch_error_shows_every_param(sched: Scheduler) -> None:
    add(
        sched,
        "V_1",
        params=PARAMS,
        param_visibilities=VISIBILITY,
        module="mod",
        status="FAILED",
        expl='"trace"',
    )
    assert sched.fetch_error(task_id="V_1") == {
        "taskId": "V_1",
        "error": '"trace"',
        "displayName": "V(public=a)",
        "taskParams": PARAMS,
        "taskModule": "mod",
        "taskFamily": "V",
    }
    assert sched.fetch_error(task_id="nope") == {"taskId": "nope", "error": ""}


def test_params_without_visibility_are_public(sched: Scheduler) -> None:
    add(sched, "V_1", params={"x": "1", "y": "2"}, param_visibilities={"y": 2})
    assert sched.task_list()["V_1"]["params"] == {"x": "1"}


def test_max_shown_tasks_returns_a_count(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(max_shown_tasks=3)
    for i in range(4):
        add(s, f"T_{i}", params={"n": str(i)})
    add(s, "D_0", status="DONE")
    assert s.task_list(status="PENDING") == {"num_tasks": 4}
    assert s.task_list() == {"num_tasks": 5}
    # with an upstream filter the true count is unknown without doing the work
    assert s.task_list(status="PENDING", upstream_status="UPSTREAM_MISSING_INPUT") == {"num_tasks": -1}
    assert len(s.task_list(status="PENDING", limit=False)) == 4
    assert len(s.task_list(status="PENDING", max_shown_tasks=10)) == 4
    assert set(s.task_list(status="DONE")) == {"D_0"}
    # a search matches display names and is counted after filtering
    assert set(s.task_list(search="T(n=1)")) == {"T_1"}
    assert s.task_list(search="T") == {"num_tasks": 4}


def test_max_graph_nodes_keeps_the_nearest_nodes(make_scheduler: Make) -> None:
    s = make_scheduler(max_graph_nodes=4)
    add(s, "root", deps=["a_1", "b_1"])
    add(s, "a_1", deps=["a_2"])
    add(s, "a_2", deps=["a_3"])
    add(s, "b_1", deps=["b_2"])
    add(s, "b_2")
    add(s, "a_3")
    graph = s.dep_graph(task_id="root")
    # breadth first: the root, its deps, then the first of the next level (in sorted order)
    assert set(graph) == {"root", "a_1", "b_1", "a_2"}
    assert "display_name" in graph["root"]
    assert "display_name" not in graph["a_1"]
    inverse = s.inverse_dep_graph(task_id="a_3")
    assert set(inverse) == {"a_3", "a_2", "a_1", "root"}


def test_dep_graph_without_done_tasks(sched: Scheduler) -> None:
    add(sched, "root", deps=["a_1", "b_1"])
    add(sched, "a_1", status="DONE")
    add(sched, "b_1")
    graph = sched.dep_graph(task_id="root", include_done=False)
    assert set(graph) == {"root", "b_1"}
    assert graph["root"]["deps"] == ["b_1"]
    assert set(sched.dep_graph(task_id="root")) == {"root", "a_1", "b_1"}
    assert sched.dep_graph(task_id="missing") == {}


def test_graph_shows_unknown_deps_as_placeholders(sched: Scheduler) -> None:
    sched.add_task(task_id="root", worker="w1", family="R", params={}, deps=["Other_x_1"])
    node = sched.dep_graph(task_id="root")["Other_x_1"]
    assert node == {
        "deps": [],
        "status": "UNKNOWN",
        "workers": [],
        "start_time": "UNKNOWN",
        "params": {"task_id": "Other_x_1"},
        "name": "Other",
        "priority": 0,
    }
