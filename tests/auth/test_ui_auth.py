"""The visualiser in a real browser with authentication on: a viewer sees everything and
every action fails with a visible message; an admin acts. The page runs under luigid's own
Content-Security-Policy header here (not bypassed), which must break nothing, and
worker-supplied HTML stays inert under it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.auth.test_auth import PASSWORDS, auth_section
from tests.support import Luigid, wait_for
from tests.support.browser import watch_page

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
INDEX = "static/visualiser/index.html"


def as_worker(daemon: Luigid, method: str, **args: Any) -> Any:
    reply = requests.post(
        daemon.base + f"api/{method}",
        data={"data": json.dumps(args)},
        auth=("wes", PASSWORDS["wes"]),
        timeout=10,
    )
    reply.raise_for_status()
    return reply.json()["response"]


def status_of(daemon: Luigid, task_id: str) -> str:
    reply = requests.post(
        daemon.base + "api/task_list", data={"data": "{}"}, auth=("vic", PASSWORDS["vic"]), timeout=10
    )
    return str(reply.json()["response"][task_id]["status"])


@pytest.fixture(scope="module")
def luigid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Luigid]:
    folder = tmp_path_factory.mktemp("ui-auth")
    daemon = Luigid(
        folder / "daemon",
        auth_section(str(folder)) + "[scheduler]\nretry_delay = 3600\n",
    ).start()
    try:
        as_worker(daemon, "add_worker", worker="w", info=[["host", XSS], ["workers", 1]])
        for name in ("Broken_1", "Broken_2"):
            as_worker(
                daemon,
                "add_task",
                worker="w",
                task_id=name,
                family="Broken",
                status="FAILED",
                params={"p": XSS},
                expl=json.dumps(f"Traceback: {XSS}"),
            )
        as_worker(daemon, "add_task", worker="w", task_id=XSS, family="Evil", status="FAILED", expl='"x"')
        as_worker(daemon, "set_task_status_message", task_id=XSS, status_message=XSS)
        as_worker(
            daemon,
            "add_task",
            worker="w",
            task_id="Tracked",
            family="Tracked",
            status="RUNNING",
            tracking_url="javascript:alert(3)",
        )
    except BaseException:
        daemon.stop()
        raise
    yield daemon
    daemon.stop()


class Probe:
    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.csp: list[str] = []


def open_page(browser: Any, daemon: Luigid, who: str | None, probe: Probe, fragment: str = "") -> Any:
    credentials = {"username": who, "password": PASSWORDS[who]} if who else None
    context = browser.new_context(viewport={"width": 1400, "height": 900}, http_credentials=credentials)
    page = context.new_page()
    watch_page(page, probe.dialogs, probe.errors)
    page.on(
        "console",
        lambda msg: probe.csp.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return page


@pytest.fixture
def probe() -> Iterator[Probe]:
    found = Probe()
    yield found
    assert found.dialogs == [], f"the page raised JavaScript dialogs: {found.dialogs}"
    assert found.errors == [], f"uncaught errors in the page: {found.errors}"
    assert found.csp == [], f"the Content-Security-Policy blocked something: {found.csp}"


def row(page: Any, task_id: str) -> Any:
    return page.locator(f"#task-table tr.task-row[data-task-id='{task_id}']")


def load(page: Any, daemon: Luigid, fragment: str = "") -> Any:
    response = page.goto(daemon.base + INDEX + (f"#{fragment}" if fragment else ""))
    page.wait_for_selector("body[data-loaded=true]")
    return response


def test_without_credentials_nothing_is_shown(browser: Any, luigid: Luigid, probe: Probe) -> None:
    from playwright.sync_api import Error as PlaywrightError

    page = open_page(browser, luigid, None, probe)
    # headless Chromium cannot show the login prompt a 401 Basic challenge asks for
    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        page.goto(luigid.base + INDEX)
    assert page.request.get(luigid.base + INDEX).status == 401
    assert page.locator("#task-table").count() == 0
    page.context.close()


def test_viewer_sees_but_cannot_act(browser: Any, luigid: Luigid, probe: Probe) -> None:
    page = open_page(browser, luigid, "vic", probe)
    response = load(page, luigid, "status=FAILED")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    row(page, "Broken_1").wait_for()
    assert row(page, "Broken_1").locator(".param-value").text_content() == XSS
    row(page, "Broken_1").locator("button.act-done").click()
    page.locator("dialog[open] button", has_text="Mark done").click()
    notice = page.locator(".notice.error")
    notice.wait_for()
    assert "Mark as done failed" in notice.text_content()
    assert "has role viewer; mark_as_done needs admin" in notice.text_content()
    row(page, "Broken_1").locator("button.act-forgive").click()
    page.locator(".notice.error", has_text="forgive_failures needs admin").wait_for()
    assert status_of(luigid, "Broken_1") == "FAILED"
    assert page.locator("img").count() == 0
    page.context.close()


def test_admin_acts(browser: Any, luigid: Luigid, probe: Probe) -> None:
    page = open_page(browser, luigid, "ada", probe)
    load(page, luigid, "status=FAILED")
    row(page, "Broken_2").locator("button.act-done").click()
    page.locator("dialog[open] button", has_text="Mark done").click()
    wait_for(lambda: status_of(luigid, "Broken_2") == "DONE", what="task marked done")
    page.locator(".notice.ok", has_text="Now done").wait_for()
    page.context.close()


def test_payloads_stay_inert_under_the_policy(browser: Any, luigid: Luigid, probe: Probe) -> None:
    page = open_page(browser, luigid, "vic", probe)
    load(page, luigid, "status=FAILED")
    row(page, XSS).wait_for()
    assert row(page, XSS).locator(".cell-message").text_content() == XSS
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0
    page.context.close()
    page = open_page(browser, luigid, "vic", probe)
    load(page, luigid, "status=RUNNING")
    tracked = row(page, "Tracked").locator(".cell-tracking")
    tracked.wait_for()
    assert tracked.text_content() == "javascript:alert(3)"
    assert tracked.locator("a").count() == 0
    page.context.close()
    page = open_page(browser, luigid, "vic", probe)
    load(page, luigid, "status=FAILED")
    row(page, "Broken_1").locator("button.act-error").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("pre.traceback").wait_for()
    assert XSS in dialog.text_content()
    assert page.locator("img").count() == 0
    page.context.close()
    for fragment in ("search=" + XSS, "tab=workers", "tab=graph&task=" + XSS):
        page = open_page(browser, luigid, "vic", probe)
        load(page, luigid, fragment)
        assert page.locator("img").count() == 0
        assert page.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0
        page.context.close()


def pump(page: Any, predicate: Any, what: str) -> None:
    """Wait while letting Playwright deliver page events (a plain sleep would not)."""
    for _ in range(200):
        if predicate():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}")


def test_policy_is_enforced_by_the_browser(browser: Any, luigid: Luigid) -> None:
    """The header's policy really applies: an injected inline script does not run, and no
    page can frame the visualiser (frame-ancestors works only as a header)."""
    seen = Probe()
    page = open_page(browser, luigid, "vic", seen)
    load(page, luigid)
    page.evaluate(
        "document.body.appendChild(Object.assign(document.createElement('script'),"
        " {textContent: 'window.ran = 1'}))"
    )
    assert page.evaluate("window.ran") is None
    pump(page, lambda: seen.csp, "the inline script to be reported as refused")
    assert "inline script" in seen.csp[0]
    seen.csp.clear()
    # even luigid's own pages may not frame it
    page.evaluate(
        "(src) => document.body.appendChild(Object.assign(document.createElement('iframe'), {src}))",
        luigid.base + INDEX,
    )
    pump(page, lambda: seen.csp, "the frame to be refused")
    assert any("frame-ancestors 'none'" in message for message in seen.csp)
    assert seen.dialogs == [] and seen.errors == []
    page.context.close()
