"""The UI's routes: the root redirect (and health check), its static files, and not found."""

from __future__ import annotations

import os
from typing import Any

import tornado.web

from luigid.web.access import Access
from luigid.web.base import BaseHandler
from luigid.web.errors import ApiError

STATIC_ROOT = os.path.join(os.path.dirname(__file__), "static")


class RootHandler(BaseHandler):
    """``/``: the UI lives under a relative path (so a URL prefix works); HEAD is a health check."""

    def get(self) -> None:
        self.redirect("static/visualiser/index.html")

    def head(self) -> None:
        self.set_status(204)
        self.finish()

    def access(self) -> Access | None:
        # HEAD / is the health check load balancers and supervisors use: always open
        return None if self.request.method == "HEAD" else Access("viewer", False, "GET /")


class StaticHandler(BaseHandler, tornado.web.StaticFileHandler):
    """The UI's files. Browsers revalidate them on every load (cheap: ETag/304), so an
    upgraded luigid is never shown with a stale mix of old and new scripts."""

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return 0

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")

    def write_error_body(self, status_code: int, message: str) -> None:
        self.write_tornado_error_page(status_code)


class NotFoundHandler(BaseHandler):
    def precheck(self) -> None:
        raise ApiError(404, f"no such path: {self.request.path}")
