"""One real luigi worker process for the kill -9 test: ``python fault_worker.py DEADLINE``.

It does what a cron-driven luigi job does: ``luigi.build([FaultRoot()])`` against the central
scheduler named in LUIGI_CONFIG_PATH, and again while FaultRoot is incomplete. A second round is
needed when luigid came back without the tasks this worker had scheduled (no state saved since
the kill): luigi's worker then hears "nothing pending" from get_work and returns, and only a
new build() re-checks complete() and re-adds what is left. Each round's outcome goes to
``$LUIGID_FAULT_DIR/workers/<pid>.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import luigi
from fault_dag import FaultRecorded, FaultRoot, fault_dir

MAX_ROUNDS = 200


def build_until_complete(root: FaultRecorded, deadline: float, workers: int, **extra: Any) -> dict[str, Any]:
    """``luigi.build([root])`` again while ``root`` is incomplete (until ``deadline``); each
    round's outcome (after ``extra``) written to ``$LUIGID_FAULT_DIR/workers/<pid>.json``."""
    rounds = []
    for _ in range(MAX_ROUNDS):
        if root.complete() or time.time() > deadline:
            break
        started = time.time()
        try:
            outcome = "ok" if luigi.build([root], workers=workers, log_level="WARNING") else "not all done"
        except Exception:  # an RPC that failed every retry: luigi raises, the job would be rerun
            outcome = "error: " + traceback.format_exc(limit=1).strip().splitlines()[-1]
        rounds.append({"started": started, "seconds": time.time() - started, "outcome": outcome})
    report = {**extra, "rounds": rounds, "root_complete": root.complete()}
    with open(os.path.join(fault_dir(), "workers", f"{os.getpid()}.json"), "w") as out:
        json.dump(report, out)
    return report


def main() -> int:
    report = build_until_complete(FaultRoot(), float(sys.argv[1]), workers=1)
    return 0 if report["root_complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
