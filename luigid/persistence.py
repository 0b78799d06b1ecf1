"""Reading and writing the state file.

Writes are atomic: the state goes to a temporary file in the same folder, is fsynced, and
is renamed over the old file, so a crash at any moment leaves either the old complete file
or the new complete file, never a torn one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import tempfile

from luigid.state import State

logger = logging.getLogger("luigi.server")


class StateFileError(Exception):
    """The state file could not be written (a startup check turns this into one line)."""


def save_state(state: State, path: str) -> None:
    tasks, workers, batchers = state.snapshot()
    payload = pickle.dumps((tasks, workers, batchers), protocol=pickle.HIGHEST_PROTOCOL)
    write_atomically(path, payload)
    logger.info("Saved state in %s", path)


def write_atomically(path: str, payload: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # make the rename itself durable
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


def load_into(state: State, path: str) -> bool:
    """Fill ``state`` from ``path``; False (and an empty state) when there is no file."""
    if not os.path.exists(path):
        logger.info("No prior state file exists at %s. Starting with empty state", path)
        return False
    logger.info("Attempting to load state from %s", path)
    with open(path, "rb") as src:
        tasks, workers, batchers = pickle.load(src)
    state.restore(tasks, workers, batchers)
    return True


def check_writable(path: str) -> str | None:
    """Why the state could not be saved at ``path``, or None when it can."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"{probe} is not a directory"
    if probe != folder:
        if not os.access(probe, os.W_OK | os.X_OK):
            return f"cannot create {folder}: {probe} is not writable"
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    if os.path.exists(path) and not os.access(path, os.R_OK):
        return f"{path} is not readable"
    return None
