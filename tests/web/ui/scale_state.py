"""A luigi state file with some 25k tasks, written by luigi's own Scheduler (run as a script
with the path as argument), for the browser tests at scale: luigid then starts from it as it
starts from any luigi state file. Loading the tasks through a worker would take minutes.

Families and what they are (counts in COUNTS):
  Bulk     14,000 pending tasks
  Source   10 failed tasks; Consumer: 2,000 pending tasks needing them (upstream failed)
  Gone     5 disabled tasks; Waiter: 500 pending tasks needing them (upstream disabled)
  Finished 3,000 done tasks
  Top      the root of a 5,000-task DAG: Top -> 50 Layer1 -> 4,949 Layer2, each Layer2
           task needed by two Layer1 tasks
"""

from __future__ import annotations

import sys

LAYER1 = 50
LAYER2 = 4949
COUNTS = {
    "Bulk": 14000,
    "Source": 10,
    "Consumer": 2000,
    "Gone": 5,
    "Waiter": 500,
    "Finished": 3000,
    "Top": 1,
    "Layer1": LAYER1,
    "Layer2": LAYER2,
}
TOTAL = sum(COUNTS.values())
BOXES = {
    "PENDING": COUNTS["Bulk"] + 1 + LAYER1 + LAYER2,
    "DONE": COUNTS["Finished"],
    "FAILED": COUNTS["Source"],
    "UPSTREAM_FAILED": COUNTS["Consumer"],
    "DISABLED": COUNTS["Gone"],
    "UPSTREAM_DISABLED": COUNTS["Waiter"],
}
GRAPH_NODES = 1 + LAYER1 + LAYER2
GRAPH_EDGES = LAYER1 + 2 * LAYER2


def task_id(family: str, n: int) -> str:
    return f"{family}_{n}"


def build(path: str) -> None:
    from luigi.scheduler import Scheduler

    s = Scheduler(state_path=path, record_task_history=False)

    def add(family: str, n: int, **kw: object) -> None:
        s.add_task(worker="loader", task_id=task_id(family, n), family=family, params={"n": str(n)}, **kw)

    for n in range(COUNTS["Bulk"]):
        add("Bulk", n)
    for n in range(COUNTS["Source"]):
        add("Source", n, status="FAILED")
    for n in range(COUNTS["Consumer"]):
        add("Consumer", n, deps=[task_id("Source", n % COUNTS["Source"])])
    for n in range(COUNTS["Gone"]):
        add("Gone", n, status="DISABLED")
    for n in range(COUNTS["Waiter"]):
        add("Waiter", n, deps=[task_id("Gone", n % COUNTS["Gone"])])
    for n in range(COUNTS["Finished"]):
        add("Finished", n, status="DONE")
    needs: list[list[str]] = [[] for _ in range(LAYER1)]
    for n in range(LAYER2):
        add("Layer2", n)
        needs[n % LAYER1].append(task_id("Layer2", n))
        needs[(n + 1) % LAYER1].append(task_id("Layer2", n))
    for n in range(LAYER1):
        add("Layer1", n, deps=needs[n])
    add("Top", 0, deps=[task_id("Layer1", n) for n in range(LAYER1)])
    s.dump()


if __name__ == "__main__":
    build(sys.argv[1])
