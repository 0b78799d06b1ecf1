"""What one ``fork()`` costs the forking process, against its resident memory.

    python bench/fork_cost.py --gb 0.5,1,2,3

luigid's periodic snapshot forks the whole daemon (luigid/storage/snapshots.py), and the
event loop waits for ``fork()`` to return: the kernel copies the page tables of every
resident page first. This grows a heap of small Python objects (one slotted object and a
small dict per "task", as luigid's records are) in steps up to each size, and at each times
``--forks`` forks in the parent (the child leaves at once), wall and CPU (the parent's
system time is the page-table copy), once as is and once after ``gc.freeze()``. Prints one
line per size and the cost per GB.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
from pathlib import Path


class Record:
    __slots__ = ("deps", "fields", "id", "status")

    def __init__(self, n: int) -> None:
        self.id = f"Task_{n:09d}"
        self.fields = {"family": "Transform", "n": n, "params": {"shard": str(n % 4)}}
        self.deps = [n - 1, n - 2]
        self.status = "PENDING"


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def time_forks(count: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of ``count`` forks, in the parent."""
    walls, cpus = [], []
    for _ in range(count):
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        os.waitpid(pid, 0)
        walls.append(wall)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gb", default="0.5,1,2,3", help="resident sizes to fork at, ascending")
    parser.add_argument("--forks", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"load average {Path('/proc/loadavg').read_text().strip()}")
    print("| RSS | fork wall (median) | fork CPU | after gc.freeze(): wall | CPU |")
    print("|---|---|---|---|---|")
    heap: list[Record] = []
    gc.disable()  # growing the heap is not what is measured
    per_gb = []
    for size in (float(s) for s in args.gb.split(",")):
        while rss_bytes() < size * 2**30:
            heap.extend(Record(len(heap) + i) for i in range(100_000))
        rss = rss_bytes() / 2**30
        wall, cpu = time_forks(args.forks)
        gc.freeze()
        frozen_wall, frozen_cpu = time_forks(args.forks)
        gc.unfreeze()
        per_gb.append(wall / rss)
        print(
            f"| {rss:.2f} GB | {wall * 1000:.1f} ms | {cpu * 1000:.1f} ms "
            f"| {frozen_wall * 1000:.1f} ms | {frozen_cpu * 1000:.1f} ms |",
            flush=True,
        )
    print(f"fork wall per GB of RSS: {', '.join(f'{x * 1000:.1f}' for x in per_gb)} ms")
    print(f"load average {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
