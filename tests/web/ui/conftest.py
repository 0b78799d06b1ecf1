"""Browser-test fixtures: a headless Chromium page that fails the test if anything raises a
JavaScript dialog or an uncaught error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import watch_page


class PageProbe:
    """Everything a page did that a test should fail on."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []


@pytest.fixture
def probe() -> PageProbe:
    return PageProbe()


@pytest.fixture
def page(browser: Any, probe: PageProbe) -> Iterator[Any]:
    # The page's own Content-Security-Policy would stop Playwright's string predicates; it is
    # bypassed so the tests also prove the rendering is safe without that second line of defence.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    watch_page(pg, probe.dialogs, probe.errors)
    pg.on("request", lambda req: probe.requests.append(req.url))
    yield pg
    context.close()
    assert probe.dialogs == [], f"the page raised JavaScript dialogs: {probe.dialogs}"
    assert probe.errors == [], f"uncaught errors in the page: {probe.errors}"
