"""An append-only journal of task status changes since the last snapshot.

A snapshot is taken every few seconds; a kill -9 loses what changed after it, and tasks that
had finished come back as PENDING or RUNNING and are run again. Each status change is
therefore appended here with one ``os.write`` (no fsync): a killed process leaves its writes
in the OS page cache, so they survive process death for the cost of a system call.

Files are ``<state_path>.journal.<gen>``. A snapshot covers every generation up to the one
it was taken in (``rotate`` starts the next one at that moment); once the snapshot is on
disk those files are deleted. On load, lines from later generations are read back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

from luigid.core.throttled_log import ThrottledWarning
from luigid.storage.generations import Generations

logger = logging.getLogger("luigi.server")

#: task id, status, when (epoch seconds), the worker running it (RUNNING only, else None)
Entry = tuple[str, str, float, "str | None"]


class Journal(Generations):
    """Status changes of one state file, one line each: JSON ``[task_id, status, when]``, with
    the running worker's id as a fourth item for RUNNING."""

    def __init__(self, state_path: str) -> None:
        super().__init__(state_path, ".journal.", "status journal")
        existing = self.generations()
        #: generation new records go to; never reuses a number found on disk
        self.gen = existing[-1] + 1 if existing else 0
        self._fd: int | None = None
        # a full disk fails every status change: one line a minute, with a count
        self._write_warning = ThrottledWarning(logger)

    # ------------------------------------------------------------------ files

    # ---------------------------------------------------------------- writing

    def record(self, task_id: str, status: str, when: float, worker: str | None = None) -> None:
        """Append one status change. Never raises: the RPC that caused it must still answer."""
        try:
            item: list[Any] = [task_id, status, when] if worker is None else [task_id, status, when, worker]
            line = json.dumps(item, separators=(",", ":")) + "\n"
            if self._fd is None:
                self._fd = os.open(
                    self.path(self.gen),
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                    0o600,
                )
            data = line.encode("utf-8")
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"short write ({written} of {len(data)} bytes)")
        except Exception as exc:  # disk full, permissions, unencodable id: warn, keep serving
            self._write_failed(exc)

    def _write_failed(self, exc: Exception) -> None:
        self._write_warning.warn("Could not write the status journal %s: %s", self.path(self.gen), exc)

    def rotate(self) -> int:
        """Start a new generation; return the one a snapshot taken now covers."""
        self.close()
        covered = self.gen
        self.gen += 1
        return covered

    def start_after(self, gen: int) -> None:
        """Make sure new records go to a generation later than ``gen`` (the loaded snapshot's),
        even when the files it covered are already gone."""
        if self.gen <= gen:
            self.close()
            self.gen = gen + 1

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # ---------------------------------------------------------------- reading

    def entries_after(self, gen: int) -> list[Entry]:
        """Every record in generations later than ``gen``, in order. A last line cut short
        (power loss mid-write) is dropped; other unreadable lines are skipped with a warning."""
        entries: list[Entry] = []
        for number in self.generations():
            if number <= gen:
                continue
            path = self.path(number)
            try:
                with open(path, "rb") as src:
                    lines = src.read().split(b"\n")
            except OSError as exc:
                logger.warning("Could not read the status journal %s: %s", path, exc)
                continue
            last = len(lines) - 1
            for index, raw in enumerate(lines):
                if not raw:
                    continue
                entry = _parse(raw)
                if entry is not None:
                    entries.append(entry)
                elif index != last:  # a torn last line is expected after a crash; others are not
                    logger.warning("Skipping unreadable line %d of the status journal %s", index + 1, path)
        return entries


def _parse(raw: bytes) -> Entry | None:
    try:
        value: Any = json.loads(raw)
    except ValueError:
        return None
    if (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and isinstance(value[1], str)
        and isinstance(value[2], (int, float))
        and not isinstance(value[2], bool)
    ):
        worker = value[3] if len(value) == 4 else None
        if worker is None or isinstance(worker, str):
            return value[0], value[1], float(value[2]), worker
    return None
