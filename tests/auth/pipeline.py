"""A luigi pipeline run by a real luigi worker process against luigid.

``python pipeline.py SCHEDULER_URL OUTPUT_DIR``: four file-writing tasks (a diamond) with a
resource, a status message and progress reports, so the worker uses most of the RPCs it
has. Exit code 0 when luigi reports success, 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import luigi

OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(".")


class Step(luigi.Task):
    name = luigi.Parameter()
    resources = {"db": 1}

    def requires(self) -> list[Step]:
        parents = {"report": ["left", "right"], "left": ["raw"], "right": ["raw"], "raw": []}
        return [Step(name=p) for p in parents[str(self.name)]]

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(OUT / f"{self.name}.txt"))

    def run(self) -> None:
        worker_set: Any = self  # the worker sets these callbacks before run(); luigi declares them None
        worker_set.set_status_message(f"writing {self.name}")
        worker_set.set_progress_percentage(50)
        with self.output().open("w") as out:
            out.write(str(self.name))


if __name__ == "__main__":
    ok = luigi.build([Step(name="report")], scheduler_url=sys.argv[1], workers=1, log_level="WARNING")
    sys.exit(0 if ok else 1)
