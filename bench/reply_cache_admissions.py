"""The reply cache alone: the longest single admission and the CPU of admitting every task, in
process.

    python bench/reply_cache_admissions.py --tasks 200000 --reply-cache-tasks 300000 \\
        --source before=/path/to/old/tree --source after=.

Makes ``--tasks`` tasks in a dict (the state's records), freezes the heap and turns the
collector off (so no collection lands inside a timed call), then ``--rounds`` times admits each
task once into a fresh ``ReplyCache`` (``keep``, as the first whole task_list or graph does)
and prints the longest single call on the CPU (``time.thread_time``, so that a preemption
under load does not count) and the CPU time of all of them (timed separately, as the per-call
clock calls would inflate it). ``--source NAME=PATH`` (repeatable) runs it in a child
process per source tree, one after the other, as bench/graph_pieces.py does.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import trees

trees.use_tree()

from luigid.core.model import RetryPolicy, Task  # noqa: E402
from luigid.core.replycache import ReplyCache  # noqa: E402


def measure(a: argparse.Namespace) -> None:
    tasks: dict[str, Task] = {}
    for i in range(a.tasks):
        task = Task(
            f"Job_{i}", "PENDING", None, RetryPolicy(3, 3600, 3600), family="Job", params={"n": str(i)}
        )
        tasks[task.id] = task
    gc.collect()
    gc.freeze()
    gc.disable()
    clock = time.thread_time  # the CPU of this thread: a preemption does not count
    for rnd in range(1, a.rounds + 1):
        for task in tasks.values():
            task.encoded = None
        keep = ReplyCache(a.reply_cache_tasks, tasks).keep
        longest = 0.0
        for task in tasks.values():
            started = clock()
            keep(task, b"{}")
            longest = max(longest, clock() - started)
        for task in tasks.values():
            task.encoded = None
        keep = ReplyCache(a.reply_cache_tasks, tasks).keep
        started = time.thread_time()
        for task in tasks.values():
            keep(task, b"{}")
        whole = time.thread_time() - started
        print(
            f"  round {rnd}: longest admission {1000 * longest:.2f} ms of CPU, "
            f"all {a.tasks} admissions {1000 * whole:.0f} ms of CPU",
            flush=True,
        )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=200_000)
    p.add_argument("--reply-cache-tasks", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    trees.add_sources(p)
    a = p.parse_args(argv)
    own = [f"--tasks={a.tasks}", f"--reply-cache-tasks={a.reply_cache_tasks}", f"--rounds={a.rounds}"]
    trees.run(p, a, __file__, own, measure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
