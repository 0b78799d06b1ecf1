"""The DAG real luigi workers run across failovers: 40 leaves, 8 middles (5 leaves each), a root.

Every run() appends a line to ``$LUIGID_HA_DIR/runs/<task_id>`` before it works, so the test
counts real runs. Imported by the worker processes (dag_worker.py) and the test, never by luigid.
"""

from __future__ import annotations

import os
import random
import time

import luigi

N_LEAVES, N_MIDDLES = 40, 8
N_TASKS = N_LEAVES + N_MIDDLES + 1


def ha_dir() -> str:
    return os.environ["LUIGID_HA_DIR"]


class Recorded(luigi.Task):
    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.path.join(ha_dir(), "out", self.task_id))

    def run(self) -> None:
        fd = os.open(os.path.join(ha_dir(), "runs", self.task_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, f"{os.getpid()} {time.time()}\n".encode())
        finally:
            os.close(fd)
        time.sleep(random.uniform(0.3, 1.0))
        with self.output().open("w") as out:
            out.write(self.task_id)


class Leaf(Recorded):
    i = luigi.IntParameter()


class Middle(Recorded):
    j = luigi.IntParameter()

    def requires(self) -> list[Leaf]:
        return [Leaf(i=i) for i in range(self.j * 5, self.j * 5 + 5)]


class Root(Recorded):
    def requires(self) -> list[Middle]:
        return [Middle(j=j) for j in range(N_MIDDLES)]
