"""The longest step a whole graph or task_list reply holds the event loop for, in process, on
the CPU.

    python bench/graph_pieces.py --tasks 200000 --reply-cache-tasks 20000
    python bench/graph_pieces.py --tasks 200000 --reply-cache-tasks 300000 \\
        --source before=/path/to/old/tree --source after=.

Builds ``--tasks`` tasks in chains of 14 through our Scheduler's add_task, freezes the heap as the
daemon does after loading, then, ``--rounds`` times, makes the whole graph and the whole task_list
(every status, no ``max_shown_tasks`` cut) under the collector pause the server uses; the first
reply (``--first``: graph or task_list) fills the reply cache up to ``--reply-cache-tasks``,
compacting its slot list on the way.
Prints for each reply the number of pieces, the longest time on the CPU between two pieces
(``time.thread_time``: what the loop would wait for) and the whole reply's CPU time.

``--source NAME=PATH`` (repeatable) runs the same in a child process per source, importing
``luigid`` from the tree at PATH, one after the other, so two versions are compared in one run.
The load average is printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# the tree to import luigid from: a --source child's, or this checkout
sys.path.insert(0, os.environ.get("GRAPH_PIECES_TREE") or str(Path(__file__).resolve().parent.parent))

from luigid.core import gcpause
from luigid.scheduler import Scheduler

REPLIES: dict[str, Callable[[Scheduler], Iterable[object]]] = {
    "graph": lambda s: s.replies.graph(),
    "task_list": lambda s: s.replies.task_list("", "", False, None, 0),  # every status, no cut
}


def timed(name: str, pieces: Iterable[object]) -> None:
    count, longest = 0, 0.0
    started = last = time.thread_time()
    with gcpause.paused():
        for _ in pieces:
            now = time.thread_time()
            longest, last = max(longest, now - last), now
            count += 1
    whole = time.thread_time() - started
    print(
        f"  {name}: {count} pieces, longest step {1000 * longest:.1f} ms of CPU, "
        f"whole reply {1000 * whole:.0f} ms of CPU",
        flush=True,
    )


def measure(a: argparse.Namespace) -> None:
    s = Scheduler(record_task_history=False, reply_cache_tasks=a.reply_cache_tasks)
    for i in range(a.tasks):
        s.add_task(
            worker="w",
            task_id=f"Job_{i}",
            family="Job",
            params={"n": str(i), "day": "2026-12-05"},
            deps=[f"Job_{i - 1}"] if i % 14 else [],
            priority=i % 7,
        )
    gc.collect()
    gc.freeze()
    for rnd in range(1, a.rounds + 1):
        print(f"round {rnd}:", flush=True)
        for name in sorted(REPLIES, key=lambda name: name != a.first):
            timed(name, REPLIES[name](s))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=200_000)
    p.add_argument("--reply-cache-tasks", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--first", choices=REPLIES, default="graph", help="the reply each round makes first")
    p.add_argument("--source", action="append", default=[], metavar="NAME=PATH", help="luigid from PATH")
    a = p.parse_args(argv)
    print(f"load average at start: {load()}", flush=True)
    if not a.source:
        measure(a)
    for item in a.source:
        name, _, path = item.partition("=")
        if not name or not path:
            p.error(f"--source: expected NAME=PATH, got {item!r}")
        print(f"{name} ({Path(path).resolve()}), reply_cache_tasks = {a.reply_cache_tasks}:", flush=True)
        own = [f"--tasks={a.tasks}", f"--reply-cache-tasks={a.reply_cache_tasks}"]
        own += [f"--rounds={a.rounds}", f"--first={a.first}"]
        env = {**os.environ, "GRAPH_PIECES_TREE": str(Path(path).resolve())}
        subprocess.run([sys.executable, __file__, *own], env=env, check=True)
    print(f"load average at end: {load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
