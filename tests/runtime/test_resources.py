"""The memory watch and the descriptor limit, in process (the real daemon: test_exhaustion.py)."""

from __future__ import annotations

import logging
import resource

import pytest

from luigid.runtime.resources import MemoryWatch, memory_warning_threshold, raise_open_files_limit

MB = 1024**2


def test_memory_warns_once_per_crossing(caplog: pytest.LogCaptureFixture) -> None:
    watch = MemoryWatch(100 * MB)
    with caplog.at_level(logging.INFO, logger="luigi.server"):
        for rss in (50, 100, 120, 95, 101, 80, 130):  # 95 is within the 10 % margin: no new warning
            watch.check(rss * MB)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    past = "past the warning threshold of 100 MB ([server] memory_warning_threshold)"
    assert warnings == [
        f"Resident memory is 100 MB, {past}: the OOM killer may end luigid (see docs/operations.md)",
        f"Resident memory is 130 MB, {past}: the OOM killer may end luigid (see docs/operations.md)",
    ]
    assert "back under the warning threshold" in caplog.text


def test_threshold_zero_never_warns_and_unset_is_a_share_of_memory(caplog: pytest.LogCaptureFixture) -> None:
    MemoryWatch(0).check(10**12)
    assert not caplog.records
    assert memory_warning_threshold(0) == 0
    assert memory_warning_threshold(5 * MB) == 5 * MB
    assert memory_warning_threshold(None) > 0  # 80 % of RAM (or of the cgroup's limit)


def test_the_limit_is_set_to_the_ceiling_and_both_figures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        with caplog.at_level(logging.INFO, logger="luigi.server"):
            assert raise_open_files_limit(soft) == (soft, soft, hard)
        assert f"Open files: soft limit {soft} (was {soft}), hard limit {hard}" in caplog.text
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
