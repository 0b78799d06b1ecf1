"""Luigi task modules the end-to-end workers run (``luigi --module pipelines ...``).

Every task writes its outputs and journals facts (attempts, starts, ends, batch runs) under the
directory named by ``LUIGID_E2E_WORKDIR``, so the tests can assert what the workers actually did.
Workers import this as a top-level module (``tests/system/e2e`` on their PYTHONPATH); the test process
never imports it, so luigi only runs in the worker processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import luigi
from journal import WORKDIR_ENV, append_fact, read_journal
from shapes import SHAPES


def workdir() -> Path:
    return Path(os.environ[WORKDIR_ENV])


def record(event: str, task: luigi.Task, **facts: Any) -> None:
    append_fact(workdir(), event, str(task), **facts)


def attempts_so_far(task: luigi.Task) -> int:
    return sum(
        1 for fact in read_journal(workdir()) if fact["event"] == "attempt" and fact["task"] == str(task)
    )


class Recorded(luigi.Task):
    """A task with a file output that journals ``start``/``end`` around its ``work``."""

    delay = luigi.FloatParameter(default=0.0, significant=False)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(workdir() / "out" / f"{self.task_id}.done"))

    def work(self) -> None:
        time.sleep(self.delay)

    def run(self) -> Iterator[Any] | None:  # a subclass may yield dynamic dependencies
        record("start", self)
        self.work()
        with self.output().open("w") as out:
            out.write("ok\n")
        record("end", self)
        return None


class Chain(Recorded):
    """Link ``n`` of a linear chain: depends on link ``n - 1``."""

    n = luigi.IntParameter()

    def requires(self) -> list[Chain]:
        return [Chain(n=self.n - 1, delay=self.delay)] if self.n > 0 else []


class Node(Recorded):
    """One node of the DAG ``SHAPES[shape]``."""

    shape = luigi.Parameter()
    node = luigi.Parameter()

    def requires(self) -> list[Node]:
        return [Node(shape=self.shape, node=dep, delay=self.delay) for dep in SHAPES[self.shape][self.node]]


class Flaky(Recorded):
    """Fails on its first ``fail_times`` attempts, then succeeds."""

    fail_times = luigi.IntParameter()

    def work(self) -> None:
        record("attempt", self)
        if attempts_so_far(self) <= self.fail_times:
            raise RuntimeError(f"planned failure of {self}")


class AlwaysFails(Recorded):
    def work(self) -> None:
        record("attempt", self)
        raise RuntimeError(f"planned failure of {self}")


class Limited(Recorded):
    """Holds one unit of the scheduler resource ``x`` while it runs."""

    i = luigi.IntParameter()
    resources = {"x": 1}  # luigi reads this class attribute


class ManyLimited(luigi.WrapperTask):
    count = luigi.IntParameter()
    delay = luigi.FloatParameter(default=0.5)

    def requires(self) -> list[Limited]:
        return [Limited(i=i, delay=self.delay) for i in range(self.count)]


class BatchItem(luigi.Task):
    """Batchable: the scheduler may hand a worker several items as one comma-joined ``value``."""

    value = luigi.Parameter(batch_method=",".join)

    def values(self) -> list[str]:
        return self.value.split(",")

    def outputs(self) -> list[luigi.LocalTarget]:
        return [luigi.LocalTarget(str(workdir() / "out" / f"batch-{v}.done")) for v in self.values()]

    def complete(self) -> bool:
        return all(target.exists() for target in self.outputs())

    def run(self) -> None:
        record("batch", self, values=self.values())
        for target in self.outputs():
            with target.open("w") as out:
                out.write("ok\n")


class AllBatchItems(Recorded):
    values = luigi.ListParameter()

    def requires(self) -> list[BatchItem]:
        return [BatchItem(value=v) for v in self.values]


class DynChild(Recorded):
    i = luigi.IntParameter()


class DynParent(Recorded):
    """Discovers its dependencies while running, in two rounds of ``yield``."""

    def run(self) -> Iterator[Any]:
        record("start", self)
        yield [DynChild(i=0), DynChild(i=1)]
        yield DynChild(i=2)
        with self.output().open("w") as out:
            out.write("ok\n")
        record("end", self)
