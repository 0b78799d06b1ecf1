"""In-process cost of the two prune rounds after every worker stops, at N tasks: how many
slices each round took and the longest one (what the event loop would be held for).

    python bench/profile_prune.py --tasks 100000 [--whole]

Uses bench/profile_scheduler.py's graph (14-task pipelines from 8 workers). ``--whole``
runs each round in one call, as before rounds were sliced, for comparison.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from profile_scheduler import build

from luigid.scheduler import Scheduler


def run_round(sched: Scheduler, whole: bool) -> list[float]:
    """Slices of one whole prune round, in seconds each."""
    slices = []
    while True:
        started = time.perf_counter()
        more = sched.prune_slice(sys.maxsize if whole else None)
        slices.append(time.perf_counter() - started)
        if not more:
            return slices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--whole", action="store_true", help="each round in one call")
    args = parser.parse_args()
    sched, _ = build(args.tasks)
    gc.collect()
    gc.freeze()  # as the daemon does after loading and pruning
    state = sched.state
    for worker in state.workers():
        worker.last_active -= 10 * sched.config.worker_disconnect_delay
    print(f"tasks                         {state.count()}")
    slices = run_round(sched, args.whole)
    print(
        f"workers gone: slices          {len(slices)}, longest {max(slices) * 1000:.1f} ms, "
        f"all {sum(slices):.2f} s; workers left {len(list(state.workers()))}"
    )
    # jump the wall clock past remove_delay: every task is now due for removal (the slices
    # themselves are timed with perf_counter, which this leaves alone)
    real = time.time
    later = real() + 10 * sched.config.remove_delay
    time.time = lambda: later
    try:
        slices = run_round(sched, args.whole)
    finally:
        time.time = real
    print(
        f"tasks removed: slices         {len(slices)}, longest {max(slices) * 1000:.1f} ms, "
        f"all {sum(slices):.2f} s; tasks left {state.count()}"
    )


if __name__ == "__main__":
    main()
