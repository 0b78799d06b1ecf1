"""The DAG real luigi workers run while luigid is being killed: 297 tasks in four layers.

200 leaves, 80 middles (each needs 3 leaves, neighbours share leaves), 16 tops (5 middles
each) and one root. Every run() appends a ``start`` record saying whether its output already
existed, sleeps a little, writes its output atomically (LocalTarget's temp file + rename) and
appends a ``finish`` record, so the test can count real runs, not what the scheduler believed.
Imported by the worker processes (fault_worker.py) and by the test, never by luigid.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import luigi

N_LEAVES, N_MIDDLES, N_TOPS = 200, 80, 16
N_TASKS = N_LEAVES + N_MIDDLES + N_TOPS + 1
RUN_SECONDS = (0.1, 0.4)


def fault_dir() -> str:
    return os.environ["LUIGID_FAULT_DIR"]


def record(task_id: str, event: dict[str, Any]) -> None:
    """Append one JSON line; O_APPEND writes this small are atomic between processes."""
    line = (json.dumps(event) + "\n").encode()
    fd = os.open(os.path.join(fault_dir(), "runs", task_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class FaultRecorded(luigi.Task):
    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.path.join(fault_dir(), "out", self.task_id))

    def run(self) -> None:
        existed = self.output().exists()
        start = {"event": "start", "pid": os.getpid(), "at": time.time(), "output_existed": existed}
        record(self.task_id, start)
        time.sleep(random.uniform(*RUN_SECONDS))
        with self.output().open("w") as out:
            out.write(self.task_id)
        record(self.task_id, {"event": "finish", "pid": os.getpid(), "at": time.time()})


class FaultLeaf(FaultRecorded):
    i = luigi.IntParameter()


class FaultMiddle(FaultRecorded):
    j = luigi.IntParameter()

    def requires(self) -> list[FaultLeaf]:
        return [FaultLeaf(i=(self.j * 5 // 2 + k) % N_LEAVES) for k in range(3)]


class FaultTop(FaultRecorded):
    k = luigi.IntParameter()

    def requires(self) -> list[FaultMiddle]:
        per = N_MIDDLES // N_TOPS
        return [FaultMiddle(j=self.k * per + m) for m in range(per)]


class FaultRoot(FaultRecorded):
    def requires(self) -> list[FaultTop]:
        return [FaultTop(k=k) for k in range(N_TOPS)]


def all_tasks() -> list[FaultRecorded]:
    tasks: list[FaultRecorded] = [FaultRoot()]
    tasks += [FaultTop(k=k) for k in range(N_TOPS)]
    tasks += [FaultMiddle(j=j) for j in range(N_MIDDLES)]
    tasks += [FaultLeaf(i=i) for i in range(N_LEAVES)]
    return tasks
