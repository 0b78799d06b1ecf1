"""The longest step a whole graph reply holds the event loop for, in process, on the CPU.

    python bench/graph_pieces.py --tasks 200000 --reply-cache-tasks 20000

Builds ``--tasks`` tasks in chains of 14 through our Scheduler's add_task, freezes the heap as the
daemon does after loading, then makes the whole graph twice (the first fills the reply cache up
to ``--reply-cache-tasks``) under the collector pause the server uses, and prints for each the
number of pieces, the longest time on the CPU between two pieces (``time.thread_time``: what the
loop would wait for) and the whole reply's CPU time.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from luigid.core import gcpause
from luigid.scheduler import Scheduler


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=200_000)
    p.add_argument("--reply-cache-tasks", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args(argv)
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
        pieces, longest = 0, 0.0
        started = last = time.thread_time()
        with gcpause.paused():
            for _ in s.replies.graph():
                now = time.thread_time()
                longest, last = max(longest, now - last), now
                pieces += 1
        whole = time.thread_time() - started
        print(
            f"round {rnd}: {pieces} pieces, longest step {1000 * longest:.1f} ms of CPU, "
            f"whole reply {1000 * whole:.0f} ms of CPU",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
