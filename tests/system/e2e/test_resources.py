"""A scheduler resource limit holds across several workers in several processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.system.e2e.harness import Daemon, Workspace


def most_at_once(facts: list[dict[str, Any]]) -> int:
    """The largest number of recorded [start, end] intervals that overlap at one instant."""
    edges = [(f["t"], 1 if f["event"] == "start" else -1) for f in facts if f["event"] in ("start", "end")]
    # At equal times count ends first: touching intervals do not overlap.
    edges.sort(key=lambda edge: (edge[0], edge[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_resource_limit_is_never_exceeded(luigid_server: Callable[..., Daemon], workspace: Workspace) -> None:
    daemon = luigid_server(resources={"x": 2})
    task = ("ManyLimited", "--count", "8", "--delay", "0.4")
    # Six workers in two processes compete for two units of x; each task holds one unit.
    shared = {"retcode": {"not_run": 0}}
    runs = [workspace.start(daemon, *task, workers=3, config=shared) for _ in range(2)]
    for run in runs:
        run.expect(0)

    facts = [f for f in workspace.journal() if f["task"].startswith("Limited(")]
    finished = sorted(f["task"] for f in facts if f["event"] == "end")
    assert finished == sorted(f"Limited(i={i})" for i in range(8))
    assert most_at_once(facts) <= 2
