"""In-process benches run against several source trees in one run: each tree in a child process
that imports ``luigid`` from it (``--source NAME=PATH``), one after the other."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

#: the child's tree: put first on sys.path by ``use_tree``
TREE = "BENCH_LUIGID_TREE"


def use_tree() -> None:
    """Import ``luigid`` from the child's tree (before this checkout, which stays on the path
    for ``bench`` itself). Call before importing luigid."""
    tree = os.environ.get(TREE)
    if tree:
        sys.path.insert(0, tree)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def add_sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", default=[], metavar="NAME=PATH", help="luigid from PATH")


def run(
    p: argparse.ArgumentParser,
    a: argparse.Namespace,
    script: str,
    own: list[str],
    measure: Callable[[argparse.Namespace], None],
) -> None:
    """``measure`` this checkout, or, per ``--source``, ``script`` with the ``own`` arguments
    in a child importing that tree; the load average at the start and the end."""
    print(f"load average at start: {load()}", flush=True)
    if not a.source:
        measure(a)
    for item in a.source:
        name, _, path = item.partition("=")
        if not name or not path:
            p.error(f"--source: expected NAME=PATH, got {item!r}")
        print(f"{name} ({Path(path).resolve()}): {' '.join(own)}", flush=True)
        env = {**os.environ, TREE: str(Path(path).resolve())}
        subprocess.run([sys.executable, script, *own], env=env, check=True)
    print(f"load average at end: {load()}", flush=True)
