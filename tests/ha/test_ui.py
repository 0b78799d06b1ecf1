"""The visualiser on a standby: served through forwarding, its header says who leads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.ha.support import Cluster, add_task
from tests.support.browser import watch_page

pytestmark = pytest.mark.browser


def test_a_standbys_ui_shows_the_leaders_tasks_and_names_the_leader(
    cluster: Callable[..., Cluster], browser: Any
) -> None:
    nodes = cluster().start()
    leader = nodes.wait_leader()
    standby = nodes.standby(leader)
    add_task(leader, "Shown-Through-Standby")
    context = browser.new_context()
    try:
        page = context.new_page()
        dialogs: list[str] = []
        errors: list[str] = []
        watch_page(page, dialogs, errors)
        page.goto(standby.base + "static/visualiser/index.html#tab=tasks")
        page.wait_for_selector("text=Shown-Through-Standby", timeout=30_000)
        note = page.locator("#leader-note")
        note.wait_for(state="visible", timeout=30_000)
        leader_name = "node0" if leader is nodes.nodes[0] else "node1"
        assert f"the leader is {leader_name}" in note.inner_text()
        page.goto(leader.base + "static/visualiser/index.html#tab=tasks")
        page.locator("#leader-note").wait_for(state="visible", timeout=30_000)
        assert page.locator("#leader-note").inner_text() == f"Leader: {leader_name}"
        assert (dialogs, errors) == ([], [])
    finally:
        context.close()
