"""One real luigi worker process: ``python dag_worker.py DEADLINE`` builds dag.Root against the
scheduler in LUIGI_CONFIG_PATH, again while it is incomplete (a round whose RPCs failed every
retry ends with an error, as a cron job would, and the next round re-checks complete())."""

from __future__ import annotations

import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import luigi
from dag import Root


def main() -> int:
    deadline = float(sys.argv[1])
    root = Root()
    while not root.complete() and time.time() < deadline:
        try:
            luigi.build([root], workers=1, log_level="WARNING")
        except Exception:
            traceback.print_exc()
    return 0 if root.complete() else 1


if __name__ == "__main__":
    sys.exit(main())
