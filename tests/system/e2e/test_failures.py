"""Failed tasks come back after retry_delay, and are disabled after retry_count failures."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from tests.system.e2e.harness import Daemon, Workspace

from .harness import RETCODES

RETRY_DELAY = 1.5


def test_failed_task_is_retried_after_retry_delay_and_succeeds(
    luigid_server: Callable[..., Daemon], workspace: Workspace
) -> None:
    # prune_on_get_work: the daemon re-queues the failed task when the kept-alive worker asks for work.
    scheduler = {"retry_delay": RETRY_DELAY, "retry_count": 5, "prune_on_get_work": True}
    daemon = luigid_server(scheduler=scheduler)
    workspace.run(daemon, "Flaky", "--fail-times", "2")

    attempts = [fact["t"] for fact in workspace.events("attempt")]
    assert len(attempts) == 3, "two planned failures, then one success"
    assert [fact["task"] for fact in workspace.events("end")] == ["Flaky(fail_times=2)"]
    # The scheduler holds a failed task back for retry_delay before offering it again.
    assert all(later - earlier >= RETRY_DELAY for earlier, later in itertools.pairwise(attempts))
    assert [task["name"] for task in daemon.task_list("DONE")] == ["Flaky"]


def test_task_is_disabled_after_retry_count_failures(
    luigid_server: Callable[..., Daemon], workspace: Workspace
) -> None:
    daemon = luigid_server(scheduler={"retry_delay": 0.2, "retry_count": 2, "prune_on_get_work": True})
    worker = workspace.start(daemon, "AlwaysFails")
    worker.expect(RETCODES["task_failed"])

    assert len(workspace.events("attempt")) == 2, "disabled as soon as it failed retry_count times"
    assert [task["name"] for task in daemon.task_list("DISABLED")] == ["AlwaysFails"]
    assert daemon.task_list("FAILED") == []
    assert daemon.task_list("PENDING") == []
