"""Named DAG shapes for the ``Node`` task: node -> the nodes it depends on."""

from __future__ import annotations

SHAPES: dict[str, dict[str, list[str]]] = {
    "diamond": {"top": ["left", "right"], "left": ["base"], "right": ["base"], "base": []},
    # Six middles sharing six leaves pairwise, under one root: lots of shared dependencies.
    "mesh": {
        "root": [f"m{i}" for i in range(6)],
        **{f"m{i}": [f"l{i}", f"l{(i + 1) % 6}"] for i in range(6)},
        **{f"l{i}": [] for i in range(6)},
    },
}
