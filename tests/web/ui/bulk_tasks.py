"""Task classes for the scale and limit tests: added to the scheduler by a real luigi
worker (Worker.add), never run."""

from __future__ import annotations

import luigi


class Bulk(luigi.Task):
    n = luigi.IntParameter()

    def complete(self) -> bool:
        return False


class FanLeaf(luigi.Task):
    i = luigi.IntParameter()
    j = luigi.IntParameter()

    def complete(self) -> bool:
        return False


class FanMid(luigi.Task):
    i = luigi.IntParameter()

    def requires(self) -> list[luigi.Task]:
        return [FanLeaf(i=self.i, j=j) for j in range(15)]

    def complete(self) -> bool:
        return False


class FanTop(luigi.Task):
    def requires(self) -> list[luigi.Task]:
        return [FanMid(i=i) for i in range(20)]

    def complete(self) -> bool:
        return False


class Chain(luigi.Task):
    n = luigi.IntParameter()

    def requires(self) -> Chain | list[luigi.Task]:
        return Chain(n=self.n - 1) if self.n > 0 else []

    def complete(self) -> bool:
        return False


class Finished(luigi.Task):
    n = luigi.IntParameter()

    def complete(self) -> bool:
        return True


def schedule(port: int, tasks: list[luigi.Task]) -> None:
    """Have a luigi worker tell the scheduler about `tasks` (and their deps) without running them."""
    scheduler = luigi.rpc.RemoteScheduler(f"http://127.0.0.1:{port}")
    with luigi.worker.Worker(scheduler=scheduler, worker_processes=1) as worker:
        for task in tasks:
            assert worker.add(task)
