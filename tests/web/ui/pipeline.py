"""A small luigi pipeline run by a real luigi worker against the scheduler under test.

Run as a script: ``python pipeline.py PORT STOP_FILE``. It leaves tasks in every status the
visualiser shows: done, failed, disabled, pending behind a failure or a disabled task,
pending behind a running task, and one task that keeps running (holding a resource,
reporting a status message and progress, answering scheduler messages)
until STOP_FILE exists. Worker-supplied strings carry an HTML payload on purpose.
"""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import luigi

XSS = "<img src=x onerror=alert(1)>"


class InMemoryTask(luigi.Task):
    """Complete once run in this process: the worker checks a dependency is complete
    before running what needs it, and these tasks have no outputs."""

    _finished: ClassVar[set[str]] = set()

    def complete(self) -> bool:
        return self.task_id in InMemoryTask._finished

    def on_success(self) -> None:
        InMemoryTask._finished.add(self.task_id)


class Extract(InMemoryTask):
    priority = 10
    day = luigi.IntParameter()

    def run(self) -> None:
        pass


class Clean(InMemoryTask):
    priority = 10
    day = luigi.IntParameter()

    def requires(self) -> Extract:
        return Extract(day=self.day)

    def run(self) -> None:
        pass


class Explode(InMemoryTask):
    priority = 10
    label = luigi.Parameter()

    def run(self) -> None:
        raise RuntimeError(f"boom {XSS}")


class Broken(InMemoryTask):
    priority = 10
    n = luigi.IntParameter()

    def run(self) -> None:
        raise ValueError(f"broken {self.n}")


class Report(InMemoryTask):
    def requires(self) -> Explode:
        return Explode(label=XSS)

    def run(self) -> None:
        pass


class Fragile(InMemoryTask):
    priority = 10
    # One failure is enough for the scheduler to disable it.
    retry_count = 1

    def run(self) -> None:
        raise RuntimeError("fragile")


class Summary(InMemoryTask):
    def requires(self) -> Fragile:
        return Fragile()

    def run(self) -> None:
        pass


class LongRunning(InMemoryTask):
    name = luigi.Parameter()
    # Left at priority 0: the single worker process runs everything else (priority 10) first.
    accepts_messages = True
    resources = {"gpu": 1}

    def run(self) -> None:
        stop = os.environ["UI_PIPELINE_STOP"]
        # No set_tracking_url here: luigi sends it as an add_task that resets accepts_messages.
        worker_set: Any = self  # the worker sets these before run(); luigi declares them None
        worker_set.set_status_message(f"working {XSS}")
        worker_set.set_progress_percentage(42)
        while not os.path.exists(stop):
            try:
                msg = worker_set.scheduler_messages.get(timeout=0.2)
            except queue.Empty:
                continue
            msg.respond(f"echo: {msg.content}")
        time.sleep(0.1)


class Waiting(InMemoryTask):
    n = luigi.IntParameter()

    def requires(self) -> LongRunning:
        return LongRunning(name=XSS)

    def run(self) -> None:
        pass


class Root(luigi.WrapperTask):
    def requires(self) -> Iterator[luigi.Task]:
        yield from (Clean(day=d) for d in (1, 2, 3))
        yield Report()
        yield Summary()
        yield Broken(n=1)
        yield Broken(n=2)
        yield from (Waiting(n=n) for n in (1, 2))


def main(port: int, stop_file: str) -> None:
    os.environ["UI_PIPELINE_STOP"] = stop_file
    luigi.build([Root()], scheduler_host="127.0.0.1", scheduler_port=port, workers=1, log_level="WARNING")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
