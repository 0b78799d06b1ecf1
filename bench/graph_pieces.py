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
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import trees

trees.use_tree()

from luigid.core import gcpause  # noqa: E402
from luigid.scheduler import Scheduler  # noqa: E402

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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=200_000)
    p.add_argument("--reply-cache-tasks", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--first", choices=REPLIES, default="graph", help="the reply each round makes first")
    trees.add_sources(p)
    a = p.parse_args(argv)
    own = [f"--tasks={a.tasks}", f"--reply-cache-tasks={a.reply_cache_tasks}", f"--rounds={a.rounds}"]
    own.append(f"--first={a.first}")
    trees.run(p, a, __file__, own, measure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
