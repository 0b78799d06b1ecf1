"""Regenerate docs/screenshots/*.png: the pipeline of pipeline.py on a real luigid, one
picture per tab. Run: ``.venv/bin/python tests/web/ui/make_screenshots.py``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for tests.*
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.ui.support import start_pipeline_server

OUT = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_pipeline_server(Path(tmp))
        try:
            root = server.task_id("Root_")
            views = {
                "tasks.png": "",
                "tasks-failed.png": "status=FAILED",
                "graph.png": f"tab=graph&task={root}",
                "workers.png": "tab=workers",
                "resources.png": "tab=resources",
            }
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 860})
                for name, fragment in views.items():
                    page.goto(server.page_url(fragment))
                    page.wait_for_selector("body[data-loaded=true]")
                    page.screenshot(path=str(OUT / name))
                page.goto(server.page_url("status=FAILED"))
                page.wait_for_selector("body[data-loaded=true]")
                page.locator("#task-table tr.task-row button.act-error").first.click()
                page.locator("dialog[open] pre.traceback").wait_for()
                page.screenshot(path=str(OUT / "error.png"))
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
