"""A real luigi worker adding a new wave of tasks while luigid is being killed:
``python wave_worker.py DEADLINE WAVE``.

It builds ``WaveRoot(wave=WAVE)`` (``WAVE_LEAVES`` leaves, each recorded as fault_dag's tasks
are) against the scheduler in LUIGI_CONFIG_PATH the way fault_worker.py builds FaultRoot: again
while it is incomplete, its outcome written to ``$LUIGID_FAULT_DIR/workers/<pid>.json``. Two of
these per wave compete for the same tasks, so a daemon that forgot a task was running or done
would hand it out twice.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import luigi
from fault_dag import FaultRecorded
from fault_worker import build_until_complete

WAVE_LEAVES = 24


class WaveLeaf(FaultRecorded):
    wave = luigi.IntParameter()
    i = luigi.IntParameter()


class WaveRoot(FaultRecorded):
    wave = luigi.IntParameter()

    def requires(self) -> list[WaveLeaf]:
        return [WaveLeaf(wave=self.wave, i=i) for i in range(WAVE_LEAVES)]


def main() -> int:
    deadline, wave = float(sys.argv[1]), int(sys.argv[2])
    report = build_until_complete(WaveRoot(wave=wave), deadline, workers=2, wave=wave)
    return 0 if report["root_complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
