"""A real luigi worker adding a new wave of tasks while luigid is being killed:
``python wave_worker.py DEADLINE WAVE``.

It builds ``WaveRoot(wave=WAVE)`` (``WAVE_LEAVES`` leaves, each recorded as fault_dag's tasks
are) against the scheduler in LUIGI_CONFIG_PATH, again while it is incomplete, and writes its
outcome to ``$LUIGID_FAULT_DIR/workers/<pid>.json``. Two of these per wave compete for the same
tasks, so a daemon that forgot a task was running or done would hand it out twice.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import luigi
from fault_dag import FaultRecorded, fault_dir

WAVE_LEAVES = 24
MAX_ROUNDS = 200


class WaveLeaf(FaultRecorded):
    wave = luigi.IntParameter()
    i = luigi.IntParameter()


class WaveRoot(FaultRecorded):
    wave = luigi.IntParameter()

    def requires(self) -> list[WaveLeaf]:
        return [WaveLeaf(wave=self.wave, i=i) for i in range(WAVE_LEAVES)]


def main() -> int:
    deadline, wave = float(sys.argv[1]), int(sys.argv[2])
    root = WaveRoot(wave=wave)
    rounds = []
    for _ in range(MAX_ROUNDS):
        if root.complete() or time.time() > deadline:
            break
        started = time.time()
        try:
            outcome = "ok" if luigi.build([root], workers=2, log_level="WARNING") else "not all done"
        except Exception:
            outcome = "error: " + traceback.format_exc(limit=1).strip().splitlines()[-1]
        rounds.append({"started": started, "seconds": time.time() - started, "outcome": outcome})
    done = root.complete()
    with open(os.path.join(fault_dir(), "workers", f"{os.getpid()}.json"), "w") as out:
        json.dump({"wave": wave, "rounds": rounds, "root_complete": done}, out)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
