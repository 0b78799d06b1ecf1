"""Real luigi workers complete DAGs of several shapes through the daemon, each task exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .pipelines import SHAPES


def runs_per_task(facts: list[dict[str, Any]]) -> Counter[str]:
    return Counter(fact["task"] for fact in facts if fact["event"] == "end")


def assert_dependencies_first(facts: list[dict[str, Any]], deps: dict[str, list[str]]) -> None:
    """Each task started only after every one of its dependencies had finished."""
    started = {fact["task"]: fact["t"] for fact in facts if fact["event"] == "start"}
    ended = {fact["task"]: fact["t"] for fact in facts if fact["event"] == "end"}
    for task, requirements in deps.items():
        for dep in requirements:
            assert ended[dep] <= started[task], f"{task} started before its dependency {dep} ended"


def node(shape: str, name: str) -> str:
    return f"Node(shape={shape}, node={name})"


def test_linear_chain(luigid_server, workspace):
    daemon = luigid_server()
    workspace.run(daemon, "Chain", "--n", "4")

    facts = workspace.journal()
    links = [f"Chain(n={n})" for n in range(5)]
    assert runs_per_task(facts) == Counter(links)
    assert_dependencies_first(facts, {links[n]: [links[n - 1]] for n in range(1, 5)})
    done = daemon.api("task_list", status="DONE", upstream_status="")
    assert sorted(int(task["params"]["n"]) for task in done.values() if task["name"] == "Chain") == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_diamond(luigid_server, workspace):
    daemon = luigid_server()
    workspace.run(daemon, "Node", "--shape", "diamond", "--node", "top", workers=2)

    facts = workspace.journal()
    deps = {node("diamond", n): [node("diamond", d) for d in ds] for n, ds in SHAPES["diamond"].items()}
    assert runs_per_task(facts) == Counter(list(deps))
    assert_dependencies_first(facts, deps)


def test_two_worker_processes_share_one_dag(luigid_server, workspace):
    daemon = luigid_server()
    task = ("Node", "--shape", "mesh", "--node", "root", "--delay", "0.3")
    # Tasks a worker scheduled but saw the other process run count as "not run" for it: no error here.
    shared = {"retcode": {"not_run": 0}}
    first = workspace.start(daemon, *task, workers=2, config=shared)
    second = workspace.start(daemon, *task, workers=2, config=shared)
    first.expect(0)
    second.expect(0)

    facts = workspace.journal()
    deps = {node("mesh", n): [node("mesh", d) for d in ds] for n, ds in SHAPES["mesh"].items()}
    assert runs_per_task(facts) == Counter(list(deps)), "some task ran twice or never"
    assert_dependencies_first(facts, deps)
    assert Counter(fact["task"] for fact in facts if fact["event"] == "start") == Counter(list(deps))


def test_dynamic_dependencies(luigid_server, workspace):
    daemon = luigid_server()
    workspace.run(daemon, "DynParent")

    facts = workspace.journal()
    children = [f"DynChild(i={i})" for i in range(3)]
    assert runs_per_task(facts) == Counter(["DynParent()", *children])
    parent_end = next(f["t"] for f in facts if f["event"] == "end" and f["task"] == "DynParent()")
    for child in children:
        child_end = next(f["t"] for f in facts if f["event"] == "end" and f["task"] == child)
        assert child_end <= parent_end, f"DynParent finished before its dynamic dependency {child}"
    # The parent was resumed after each round of yielded dependencies was satisfied.
    assert sum(1 for f in facts if f["event"] == "start" and f["task"] == "DynParent()") >= 2


def test_batchable_tasks_run_as_one_batch(luigid_server, workspace):
    daemon = luigid_server()
    values = ["a", "b", "c", "d", "e"]
    workspace.run(daemon, "AllBatchItems", "--values", '["a","b","c","d","e"]')

    batches = workspace.events("batch")
    assert len(batches) == 1, f"expected one batch run, got {batches}"
    assert sorted(batches[0]["values"]) == values
    assert runs_per_task(workspace.journal())['AllBatchItems(values=["a", "b", "c", "d", "e"])'] == 1
    done = daemon.api("task_list", status="DONE", upstream_status="")
    done_items = {task["params"]["value"] for task in done.values() if task["name"] == "BatchItem"}
    assert set(values) <= done_items, f"not every batched item is DONE: {done_items}"
