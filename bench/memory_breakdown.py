"""Where a task's bytes go, in process (no HTTP): a measuring aid for docs/performance.md,
"Memory per task".

    python bench/memory_breakdown.py --tasks 100000

Adds bench/workload.py's graph through the registered RPC methods from each call's JSON,
parsed as the server parses it (so each call's strings are new objects, as in the daemon),
then sums ``sys.getsizeof`` (plus the collector's header for tracked objects) per task field
and per index. An object reachable from several places counts once, under the first that
reaches it: the task's id first, then its fields in slot order, then the indexes. Then the
same after the UI's big replies (task_list, graph), which cache each task's JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import workload as wl
from luigid.config import SchedulerConfig
from luigid.core import model
from luigid.core.model import Task
from luigid.core.rpc import RPC_METHODS, collect, loads
from luigid.scheduler import Scheduler

GC_HEADER = 16  # PyGC_Head on 64-bit CPython 3.11


def rss() -> int:
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Sizer:
    def __init__(self) -> None:
        # module constants (statuses, the shared empty map and set) are shared by all tasks
        self.seen = {id(getattr(model, name)) for name in dir(model)}
        self.seen.update(id(v) for v in (None, True, False, 0, 1, ""))

    @staticmethod
    def size(obj: Any) -> int:
        return sys.getsizeof(obj) + (GC_HEADER if gc.is_tracked(obj) else 0)

    def deep(self, obj: Any) -> int:
        if id(obj) in self.seen or isinstance(obj, Task):
            return 0
        self.seen.add(id(obj))
        total = self.size(obj)
        if isinstance(obj, dict):
            total += sum(self.deep(k) + self.deep(v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
            total += sum(self.deep(x) for x in obj)
        return total


def breakdown(sched: Scheduler) -> dict[str, int]:
    state = sched.state
    sizer = Sizer()
    tasks = list(state.tasks())
    parts: dict[str, int] = defaultdict(int)
    parts["Task object"] = sum(sizer.size(t) for t in tasks)
    for name in ("id", *(n for n in (*Task.FIELDS, "extras") if n != "id")):
        parts[f"field {name}"] = sum(sizer.deep(getattr(t, name)) for t in tasks)
    parts["state: tasks dict"] = sizer.size(state._tasks)
    parts["state: status index dicts"] = sum(sizer.size(d) for d in state._by_status.values())
    indexes = state.indexes
    parts["indexes: rdeps"] = sizer.deep(indexes.rdeps)
    parts["indexes: stakes"] = sizer.deep(indexes.stakes)

    def sorted_list(lst: Any) -> int:
        return sizer.size(lst) + sum(sizer.size(x) for x in (*lst._lists, *lst._keys, lst._maxes, lst._index))

    parts["indexes: ready lists"] = sorted_list(indexes.ready) + sum(
        sorted_list(load.ready) for load in indexes.loads.values()
    )
    parts["workers' task sets"] = sum(sizer.size(w.tasks) for w in state.workers())
    ui = state.ui
    parts["UI counters and order"] = sum(
        sizer.deep(x) for x in (ui.restored, ui.stale, ui.spread, ui.families)
    )
    queue = state.queue
    parts["prune queue"] = sum(
        sizer.deep(x) for x in (queue.timers, queue.unmarked._ids, queue.unmarked._heap)
    )
    return {k: v for k, v in parts.items() if v}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=100_000)
    args = p.parse_args(argv)
    work = wl.build(args.tasks, 8, "w")
    payloads = [json.dumps(wl.add_task_pending(t)) for t in work.tasks]
    sched = Scheduler(SchedulerConfig(state_path="/tmp/unused.pickle"))
    add_task, add_worker = RPC_METHODS["add_task"], RPC_METHODS["add_worker"]
    gc.collect()
    before = rss()
    for payload in payloads:
        add_task.invoke(sched, loads(payload))
    for worker in work.workers:
        add_worker.invoke(sched, loads(json.dumps({"worker": worker, "info": wl.worker_info(worker, None)})))
    del payloads
    gc.collect()
    n = sched.state.count()
    print(f"tasks {n}; RSS growth {(rss() - before) / n:.0f} B per task")

    def show(title: str) -> None:
        parts = breakdown(sched)
        print(f"{title}: {sum(parts.values()) / n:.0f} B per task accounted")
        for name, size in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"  {size / n:8.1f}  {name}")

    show("after the preload")
    task_list = RPC_METHODS["task_list"]
    for status in ("PENDING", ""):
        collect(
            task_list.invoke(sched, {"status": status, "upstream_status": "", "limit": False, "search": None})
        )
    collect(RPC_METHODS["graph"].invoke(sched, {}))
    gc.collect()
    show("after task_list and graph replies")


if __name__ == "__main__":
    main(sys.argv[1:])
