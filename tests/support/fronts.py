"""A single-process luigid beside one with HTTP front processes, on the same config."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.daemon import front_pids
from tests.support.daemon import Luigid, stop_all
from tests.support.exchange import form
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


def add_chain(daemon: Luigid, family: str, length: int, headers: dict[str, str]) -> None:
    """``<family>_0`` <- ``<family>_1`` <- ... by ``length`` add_task calls of worker
    ``w-<family>`` (lower case) over one keep-alive connection, each answered 200."""
    conn = daemon.connection()
    try:
        for i in range(length):
            deps = [f"{family}_{i - 1}"] if i else []
            arguments = {
                "worker": f"w-{family.lower()}",
                "task_id": f"{family}_{i}",
                "family": family,
                "deps": deps,
            }
            conn.request("POST", "/api/add_task", body=form(arguments), headers=headers)
            reply = conn.getresponse()
            reply.read()
            assert reply.status == 200
    finally:
        conn.close()
