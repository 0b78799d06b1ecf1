"""What the process holds of the machine: its descriptor limit and its resident memory.

systemd and most shells give a soft limit of 1,024 descriptors, and each luigi worker holds
two keep-alive connections, so a fleet of a few hundred workers reaches it while the hard
limit (often 524,288 under systemd) is unused. Start-up raises the soft limit to the hard one
(or to ``[server] max_open_files``). Memory is watched so that operators hear before the OOM
killer acts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource

logger = logging.getLogger("luigi.server")

#: what Linux allows a process at most unless /proc/sys/fs/nr_open says otherwise; the hard
#: limit may read as "infinity", which setrlimit refuses for descriptors
NR_OPEN_FALLBACK = 1024 * 1024
#: the default memory warning threshold, as a share of what luigid may use (cgroup limit or RAM)
MEMORY_WARNING_SHARE = 0.8


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as src:
            return int(src.read())
    except (OSError, ValueError):
        return NR_OPEN_FALLBACK


def raise_open_files_limit(ceiling: int | None = None) -> tuple[int, int, int]:
    """Set the soft RLIMIT_NOFILE to ``ceiling`` or, without one, to the hard limit; log the
    figures. Returns (soft before, soft now, hard now). Never raises: a limit that cannot
    be changed is kept, with a warning."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = _nr_open() if hard == resource.RLIM_INFINITY else hard
    wanted = top if ceiling is None else ceiling
    new_hard = hard
    if ceiling is not None and ceiling > top:
        new_hard = ceiling  # only root may raise the hard limit; otherwise it caps the ceiling
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, new_hard))
    except (ValueError, OSError) as exc:
        if new_hard == hard:
            logger.warning("Open files: could not set the limit to %d (hard limit %d): %s", wanted, top, exc)
            return soft, soft, hard
        wanted, new_hard = top, hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, new_hard))
        except (ValueError, OSError):
            return soft, soft, hard
        logger.warning(
            "Open files: [server] max_open_files = %d is above the hard limit %d; using %d", ceiling, top, top
        )
    soft_now, hard_now = resource.getrlimit(resource.RLIMIT_NOFILE)
    logger.info("Open files: soft limit %d (was %d), hard limit %d", soft_now, soft, hard_now)
    return soft, soft_now, hard_now


def resident_memory_bytes() -> int:
    """The process's resident set size now (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as src:
            return int(src.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def available_memory_bytes() -> int | None:
    """What the process may use before an OOM kill: its cgroup's memory.max (systemd's
    MemoryMax) when lower than the machine's RAM; None when neither is known."""
    limits = []
    with contextlib.suppress(OSError, ValueError):
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    cgroup = _cgroup_memory_max()
    if cgroup is not None:
        limits.append(cgroup)
    return min(limits) if limits else None


def _cgroup_memory_max() -> int | None:
    try:
        with open("/proc/self/cgroup") as src:
            paths = [line.strip().split(":", 2)[2] for line in src if line.startswith("0::")]
        if not paths:
            return None
        with open(f"/sys/fs/cgroup{paths[0].rstrip('/')}/memory.max") as src:
            text = src.read().strip()
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def memory_warning_threshold(configured: int | None) -> int:
    """``[server] memory_warning_threshold`` if set, else a share of the available memory
    (0, no warning, when that is unknown)."""
    if configured is not None:
        return configured
    available = available_memory_bytes()
    return int(available * MEMORY_WARNING_SHARE) if available else 0


class MemoryWatch:
    """Warns once when resident memory passes ``threshold`` bytes, and again only after it
    has fallen below 90 % of it (so a value hovering at the line warns once)."""

    REARM_SHARE = 0.9

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.warned = False

    def check(self, rss: int | None = None) -> None:
        if self.threshold <= 0:
            return
        rss = resident_memory_bytes() if rss is None else rss
        if not self.warned and rss >= self.threshold:
            self.warned = True
            logger.warning(
                "Resident memory is %s, past the warning threshold of %s "
                "([server] memory_warning_threshold): the OOM killer may end luigid (see docs/operations.md)",
                _mb(rss),
                _mb(self.threshold),
            )
        elif self.warned and rss < self.threshold * self.REARM_SHARE:
            self.warned = False
            logger.info(
                "Resident memory is %s, back under the warning threshold of %s", _mb(rss), _mb(self.threshold)
            )


def _mb(size: int) -> str:
    return f"{size / 1024**2:.0f} MB"
