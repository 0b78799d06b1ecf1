"""A real, small filesystem that fills up: a tmpfs mounted for one test (root only, as on
the machines these tests run on), and a filler file that takes its free space."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` for the duration of the block."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the CI machines run the suite as root)")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def free_bytes(folder: Path) -> int:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def fill(folder: Path, leave: int = 0, name: str = "filler") -> Path:
    """Take the free space of ``folder``'s filesystem but ``leave`` bytes (about: tmpfs
    counts whole pages) with one file; delete it to give the space back."""
    path = folder / name
    chunk = b"\0" * 65536
    with open(path, "ab", buffering=0) as out:
        while True:
            room = free_bytes(folder) - leave
            if room <= 0:
                break
            try:
                out.write(chunk[: min(len(chunk), room)])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return path
