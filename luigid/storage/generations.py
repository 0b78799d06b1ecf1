"""Numbered files beside the state file (``<state_path><suffix><gen>``): the change log's, and
the status journal an older luigid wrote. A snapshot covers every generation up to the one it
was taken in, so the numbers only grow and one is never reused."""

from __future__ import annotations

import glob
import logging
import os

logger = logging.getLogger("luigi.server")


class Generations:
    def __init__(self, state_path: str, suffix: str, kind: str) -> None:
        self.prefix = os.path.abspath(state_path) + suffix
        #: what the files are, for log lines ("change log", "status journal")
        self.kind = kind

    def path(self, gen: int) -> str:
        return f"{self.prefix}{gen}"

    def generations(self) -> list[int]:
        """Generation numbers of the files on disk, oldest first."""
        found = []
        for name in glob.glob(glob.escape(self.prefix) + "*"):
            suffix = name[len(self.prefix) :]
            if suffix.isdigit():
                found.append(int(suffix))
        return sorted(found)

    def discard_through(self, gen: int) -> None:
        """Delete the files a saved snapshot covers (generations up to ``gen``)."""
        for old in self.generations():
            if old > gen:
                break
            try:
                os.unlink(self.path(old))
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("Could not delete the old %s %s: %s", self.kind, self.path(old), exc)
