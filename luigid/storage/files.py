"""Replacing a file atomically: every file luigid rewrites whole goes through here.

The new content goes to a temporary file in the same folder (``.<name>.<pid>.tmp``), is
fsynced, renamed over the old file, and the folder is fsynced. A crash at any moment
therefore leaves either the old file or the new one, complete, never a torn mix; a
temporary left behind by a killed process is useless and ``remove_stale_temporaries``
deletes it. New files are created with mode 0600 (the umask can only narrow that).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable
from typing import IO


def temporary_path(path: str, pid: int) -> str:
    """Where process ``pid`` writes the next version of ``path`` before renaming it."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{pid}.tmp")


def remove_stale_temporaries(path: str) -> None:
    """Half-written versions of ``path`` left by killed processes; the real file is intact."""
    folder, name = os.path.split(os.path.abspath(path))
    for leftover in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(leftover)


def write_atomically(
    path: str,
    payload: bytes | Callable[[IO[bytes]], None],
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Write, fsync, rename, fsync the folder. ``payload`` is the content, or a function
    that writes it to the file it is given (so that it is never whole in memory).
    ``before_replace`` is called just before the
    rename; if it raises, the temporary file is removed and ``path`` is left as it was (a
    snapshot child checks there that its parent still lives, so a stale snapshot never
    replaces a newer one)."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = temporary_path(path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out:
            if isinstance(payload, bytes):
                out.write(payload)
            else:
                payload(out)
            out.flush()
            os.fsync(out.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
