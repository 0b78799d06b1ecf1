"""Numbered files beside the state file (``<state_path><suffix><gen>``): the change log's, and
the status journal an older luigid wrote. A snapshot covers every generation up to the one it
was taken in, so the numbers only grow and one is never reused."""

from __future__ import annotations

import glob
import os


class Generations:
    def __init__(self, state_path: str, suffix: str) -> None:
        self.prefix = os.path.abspath(state_path) + suffix

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
