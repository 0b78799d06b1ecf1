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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import luigi
from fault_dag import FaultRoot, fault_dir

MAX_ROUNDS = 200


def main() -> int:
    deadline = float(sys.argv[1])
    rounds = []
    for _ in range(MAX_ROUNDS):
        if FaultRoot().complete() or time.time() > deadline:
            break
        started = time.time()
        try:
            outcome = "ok" if luigi.build([FaultRoot()], workers=1, log_level="WARNING") else "not all done"
        except Exception:  # an RPC that failed every retry: luigi raises, the job would be rerun
            outcome = "error: " + traceback.format_exc(limit=1).strip().splitlines()[-1]
        rounds.append({"started": started, "seconds": time.time() - started, "outcome": outcome})
    done = FaultRoot().complete()
    with open(os.path.join(fault_dir(), "workers", f"{os.getpid()}.json"), "w") as out:
        json.dump({"rounds": rounds, "root_complete": done}, out)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
