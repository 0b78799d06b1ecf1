"""A single-process luigid beside one with HTTP front processes, on the same config."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.daemon import front_pids
from tests.support.daemon import Luigid, stop_all
from tests.support.wait import wait_for

FRONT_COUNT = 2


@contextlib.contextmanager
def single_and_fronts(
    single_dir: Path, fronts_dir: Path, config: Callable[[Path, bool], str]
) -> Iterator[tuple[Luigid, Luigid]]:
    """(single process, two fronts): ``config(folder, fronts)`` gives each one's config text."""
    single = Luigid(single_dir, config(single_dir, False))
    fronts = Luigid(fronts_dir, config(fronts_dir, True))
    try:
        single.start()
        fronts.start()
        wait_for(lambda: len(front_pids(fronts.proc.pid)) == FRONT_COUNT, 30, "two fronts")
        yield single, fronts
    finally:
        stop_all(single, fronts)
