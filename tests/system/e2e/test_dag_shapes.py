"""Real luigi workers complete DAGs of several shapes through the daemon, each task exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.system.e2e.harness import Daemon, Workspace

from .shapes import SHAPES


def assert_dependencies_first(facts: list[dict[str, Any]], deps: dict[str, list[str]]) -> None:
    """Each task started only after every one of its dependencies had finished."""
    started = {fact["task"]: fact["t"] for fact in facts if fact["event"] == "start"}
    ended = {fact["task"]: fact["t"] for fact in facts if fact["event"] == "end"}
    for task, requirements in deps.items():
        for dep in requirements:
            assert ended[dep] <= started[task], f"{task} started before its dependency {dep} ended"


def shape_deps(shape: str) -> dict[str, list[str]]:
    """``SHAPES[shape]`` in terms of the names the tasks record."""

    def name(node: str) -> str:
        return f"Node(shape={shape}, node={node})"

    return {name(node): [name(dep) for dep in deps] for node, deps in SHAPES[shape].items()}


def test_linear_chain(luigid_server: Callable[..., Daemon], workspace: Workspace) -> None:
    daemon = luigid_server()
    workspace.run(daemon, "Chain", "--n", "4")

    links = [f"Chain(n={n})" for n in range(5)]
    assert workspace.count("end") == Counter(links)
    assert_dependencies_first(workspace.journal(), {links[n]: [links[n - 1]] for n in range(1, 5)})
    assert daemon.param_values("DONE", "Chain", "n") == ["0", "1", "2", "3", "4"]


def test_diamond(luigid_server: Callable[..., Daemon], workspace: Workspace) -> None:
    daemon = luigid_server()
    workspace.run(daemon, "Node", "--shape", "diamond", "--node", "top", workers=2)

    deps = shape_deps("diamond")
    assert workspace.count("end") == Counter(list(deps))
    assert_dependencies_first(workspace.journal(), deps)
    assert daemon.param_values("DONE", "Node", "node") == ["base", "left", "right", "top"]


def test_two_worker_processes_share_one_dag(
    luigid_server: Callable[..., Daemon], workspace: Workspace
) -> None:
    daemon = luigid_server()
    task = ("Node", "--shape", "mesh", "--node", "root", "--delay", "0.3")
    # Tasks a worker scheduled but saw the other process run count as "not run" for it: no error here.
    shared = {"retcode": {"not_run": 0}}
    first = workspace.start(daemon, *task, workers=2, config=shared)
    second = workspace.start(daemon, *task, workers=2, config=shared)
    first.expect(0)
    second.expect(0)

    deps = shape_deps("mesh")
    assert workspace.count("start") == Counter(list(deps)), "some task started twice or never"
    assert workspace.count("end") == Counter(list(deps))
    assert_dependencies_first(workspace.journal(), deps)


def test_dynamic_dependencies(luigid_server: Callable[..., Daemon], workspace: Workspace) -> None:
    daemon = luigid_server()
    workspace.run(daemon, "DynParent")

    children = [f"DynChild(i={i})" for i in range(3)]
    assert workspace.count("end") == Counter(["DynParent()", *children])
    ended = {fact["task"]: fact["t"] for fact in workspace.events("end")}
    for child in children:
        assert ended[child] <= ended["DynParent()"], f"DynParent finished before its dynamic dep {child}"
    # The parent was resumed once per round of yielded dependencies that were not yet complete.
    assert workspace.count("start")["DynParent()"] == 3
    assert daemon.param_values("DONE", "DynChild", "i") == ["0", "1", "2"]


def test_batchable_tasks_run_as_one_batch(luigid_server: Callable[..., Daemon], workspace: Workspace) -> None:
    daemon = luigid_server()
    values = ["a", "b", "c", "d", "e"]
    workspace.run(daemon, "AllBatchItems", "--values", '["a","b","c","d","e"]')

    batches = workspace.events("batch")
    assert len(batches) == 1, f"expected one batch run, got {batches}"
    assert sorted(batches[0]["values"]) == values
    assert list(workspace.count("end").values()) == [1], "the task depending on the batch ran once"
    done_items = daemon.param_values("DONE", "BatchItem", "value")
    assert set(values) <= set(done_items), f"not every batched item is DONE: {done_items}"
