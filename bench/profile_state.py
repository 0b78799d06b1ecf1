"""In-process cost of the state file at N tasks: snapshot fork pause, the snapshot child's
write, pickling, the shutdown save and loading. A measuring aid (docs/operations.md).

    python bench/profile_state.py --tasks 100000

Uses bench/profile_scheduler.py's graph (14-task pipelines from 8 workers).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from profile_scheduler import build

from luigid.config import SchedulerConfig
from luigid.scheduler import Scheduler
from luigid.storage import codec, statefile
from luigid.storage.snapshots import Snapshotter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=5)
    args = parser.parse_args()
    sched, _ = build(args.tasks)
    gc.collect()
    gc.freeze()  # as the daemon does after loading and pruning
    state = sched.state
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "state.pickle")
        snapshots = Snapshotter(state, path, 1.0, fork=True)
        pauses, writes = [], []
        for _ in range(args.snapshots):
            started = time.perf_counter()
            snapshots.take()
            pauses.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            while snapshots._child is not None:
                snapshots.tick()
                time.sleep(0.005)
            writes.append(time.perf_counter() - started)
            if snapshots.last_error:
                raise SystemExit(f"snapshot failed: {snapshots.last_error}")
        cpu = time.process_time
        started = cpu()
        codec.encode(state)
        encode_s = cpu() - started
        started = cpu()
        statefile.save_state(state, path)
        save_s = cpu() - started
        size = os.path.getsize(path)
        fresh = Scheduler(SchedulerConfig(state_path=path))
        started = cpu()
        statefile.load_into(fresh.state, path)
        load_s = cpu() - started
    print(f"tasks                         {state.count()}")
    print(f"snapshot fork pause (ms)      {', '.join(f'{p:.1f}' for p in pauses)}")
    print(f"snapshot child write (s)      {', '.join(f'{w:.2f}' for w in writes)}")
    print(f"pickling inline (CPU s)       {encode_s:.2f}")
    print(f"shutdown save (CPU s)         {save_s:.2f}")
    print(f"state file (MB)               {size / 2**20:.1f}")
    print(f"loading (CPU s)               {load_s:.2f}")


if __name__ == "__main__":
    main()
