"""Every action in the visualiser changes the scheduler's state, checked through the API.
The tests share one server and run in file order; disabling the worker comes last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import wait_for
from tests.web.ui.support import UiServer, open_ui, start_pipeline_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    srv = start_pipeline_server(tmp_path_factory.mktemp("actions"))
    yield srv
    srv.stop()


def row(page: Any, task_id: str) -> Any:
    return page.locator(f"#task-table tr.task-row[data-task-id='{task_id}']")


def test_forgive_failures(page: Any, server: UiServer) -> None:
    broken = server.task_id("Broken_1")
    open_ui(page, server, "status=FAILED")
    row(page, broken).locator("button.act-forgive").click()
    wait_for(lambda: server.statuses()[broken] == "PENDING", what="forgiven task to be pending")
    page.wait_for_function(
        "(id) => !document.querySelector(`#task-table tr[data-task-id='${id}']`)", arg=broken
    )


def test_mark_as_done_asks_then_marks(page: Any, server: UiServer) -> None:
    broken = server.task_id("Broken_2")
    open_ui(page, server, "status=FAILED")
    row(page, broken).locator("button.act-done").click()
    dialog = page.locator("dialog[open]")
    assert "Broken(n=2)" in dialog.text_content()
    dialog.locator("button", has_text="Cancel").click()
    assert server.statuses()[broken] == "FAILED"
    row(page, broken).locator("button.act-done").click()
    page.locator("dialog[open] button", has_text="Mark done").click()
    wait_for(lambda: server.statuses()[broken] == "DONE", what="task marked done")


def test_re_enable_disabled_task(page: Any, server: UiServer) -> None:
    fragile = server.task_id("Fragile_")
    open_ui(page, server, "status=DISABLED")
    row(page, fragile).locator("button.act-reenable").click()
    wait_for(lambda: server.statuses()[fragile] == "FAILED", what="re-enabled task to be failed again")


def test_show_error_traceback(page: Any, server: UiServer) -> None:
    explode = server.task_id("Explode_")
    open_ui(page, server, "status=FAILED")
    row(page, explode).locator("button.act-error").click()
    pre = page.locator("dialog[open] pre.traceback")
    pre.wait_for()
    text = pre.text_content()
    assert "Traceback" in text and "RuntimeError: boom <img src=x onerror=alert(1)>" in text
    # luigi workers send the explanation JSON-encoded; the page shows it decoded.
    assert text == json.loads(server.call("fetch_error", task_id=explode)["error"])


def test_status_message_and_progress(page: Any, server: UiServer) -> None:
    long_running = server.task_id("LongRunning_")
    open_ui(page, server, "status=RUNNING")
    r = row(page, long_running)
    assert r.locator(".cell-message").text_content() == "working <img src=x onerror=alert(1)>"
    assert r.locator(".progress-text").text_content() == "42%"
    r.locator("button.act-status").click()
    page.locator("dialog[open] pre.status-message").wait_for()
    assert (
        page.locator("dialog[open] pre.status-message").text_content()
        == "working <img src=x onerror=alert(1)>"
    )
    assert page.locator("dialog[open] .progress").get_attribute("aria-valuenow") == "42"


def test_send_scheduler_message_shows_response(page: Any, server: UiServer) -> None:
    long_running = server.task_id("LongRunning_")
    open_ui(page, server, "status=RUNNING")
    row(page, long_running).locator("button.act-message").click()
    page.fill("dialog[open] textarea", "hello <b>there</b>")
    page.click("dialog[open] button:has-text('Send')")
    response = page.locator("dialog[open] pre.message-response")
    response.wait_for(timeout=30000)
    assert response.text_content() == "echo: hello <b>there</b>"


def test_pause_and_unpause(page: Any, server: UiServer) -> None:
    open_ui(page, server)
    assert server.call("is_paused") == {"paused": False}
    page.click("#pause-toggle")
    wait_for(lambda: server.call("is_paused")["paused"], what="scheduler paused")
    page.wait_for_function("document.querySelector('#pause-toggle').textContent.startsWith('Paused')")
    page.click("#pause-toggle")
    wait_for(lambda: not server.call("is_paused")["paused"], what="scheduler resumed")
    page.wait_for_function("document.querySelector('#pause-toggle').textContent === 'Pause scheduling'")


def test_update_resource_total(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=resources")
    card = page.locator(".resource-card[data-resource=gpu]")
    card.locator("input.resource-total").fill("5")
    card.locator("button.act-update-resource").click()
    wait_for(
        lambda: {r["name"]: r["num_total"] for r in server.call("resource_list")}["gpu"] == 5,
        what="gpu total of 5",
    )
    page.wait_for_function(
        "document.querySelector('.resource-card[data-resource=gpu] .resource-usage')"
        ".textContent === '1 of 5 used'"
    )
    # A bad total is refused in the page and changes nothing.
    card.locator("input.resource-total").fill("-1")
    card.locator("button.act-update-resource").click()
    page.locator(".notice.error").wait_for()
    assert {r["name"]: r["num_total"] for r in server.call("resource_list")}["gpu"] == 5


def test_set_worker_processes(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=workers")
    page.fill(".worker-card input.processes", "3")
    page.click(".worker-card button.act-processes")
    # The worker picks the message up on its next ping and reports its new size.
    wait_for(lambda: server.call("worker_list")[0]["workers"] == 3, what="worker to report 3 processes")
    page.click("#refresh-now")
    page.wait_for_function(
        "[...document.querySelectorAll('.worker-card .field')].some(f => f.textContent === 'Processes3')"
    )


def test_disable_worker(page: Any, server: UiServer) -> None:
    open_ui(page, server, "tab=workers")
    page.click(".worker-card button.act-disable-worker")
    page.locator("dialog[open] button", has_text="Disable").click()
    wait_for(lambda: server.call("worker_list")[0]["state"] == "disabled", what="worker disabled")
    page.wait_for_function("document.querySelector('.worker-card .badge').textContent === 'disabled'")
