"""Tasks the real luigi workers of ``test_luigi_export`` run (``luigi --module luigi_export_tasks``).

Between them they give a state every exported field can be checked on: done tasks with
params, a hidden param, priority and resources; one reporting a status message and
progress; one failing every time (a failure count); one disabled after its first failure
(its own retry policy); a root left PENDING on them; one still RUNNING (with a tracking
URL) when the daemon stops. Workers import this as a top-level module; the test process
never imports it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import luigi
from luigi.parameter import ParameterVisibility

OUT_ENV = "LUIGID_EXPORT_TEST_OUT"


def out_dir() -> Path:
    return Path(os.environ[OUT_ENV])


class Leaf(luigi.Task):
    name = luigi.Parameter()
    token = luigi.Parameter(default="not-shown", visibility=ParameterVisibility.HIDDEN)
    priority = 5
    resources = {"r": 1}

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(out_dir() / f"leaf-{self.name}.done"))

    def run(self) -> None:
        with self.output().open("w") as out:
            out.write("ok\n")


class Reporter(luigi.Task):
    accepts_messages = True

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(out_dir() / "reporter.done"))

    def run(self) -> None:
        running: Any = self  # the worker sets these callbacks on the instance it runs
        running.set_status_message("halfway there")
        running.set_progress_percentage(50)
        with self.output().open("w") as out:
            out.write("ok\n")


class Broken(luigi.Task):
    attempt_note = luigi.IntParameter(default=7)

    def complete(self) -> bool:
        return False

    def run(self) -> None:
        raise RuntimeError("Broken fails on purpose")


class Fragile(luigi.Task):
    retry_count = 1  # luigi sends it as the task's retry policy: disabled after one failure

    def complete(self) -> bool:
        return False

    def run(self) -> None:
        raise RuntimeError("Fragile fails on purpose")


class Root(luigi.WrapperTask):
    def requires(self) -> list[luigi.Task]:
        return [Leaf(name="a"), Leaf(name="b"), Reporter(), Broken(), Fragile()]


class Slow(luigi.Task):
    """Runs until the test kills its worker: RUNNING in the exported state."""

    resources = {"r": 1}

    def complete(self) -> bool:
        return False

    def run(self) -> None:
        running: Any = self
        running.set_tracking_url("http://tracker.invalid/slow")
        time.sleep(300)
