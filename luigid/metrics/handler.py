"""``GET /metrics``: whatever the configured collector exposes.

As in luigi, a collector with nothing to expose (none, default, datadog) answers 200 with an
empty body. A collector that raises answers 500 with a logged traceback instead of taking
the server down.
"""

from __future__ import annotations

import logging
from typing import Any

from luigid.metrics.collector import MetricsCollector
from luigid.web.base import BaseHandler

logger = logging.getLogger("luigid.metrics")


class MetricsHandler(BaseHandler):
    def initialize(self, collector: MetricsCollector, **kwargs: Any) -> None:
        super().initialize(**kwargs)
        self.collector = collector

    def get(self, *args: Any) -> None:
        try:
            body = self.collector.generate_latest()
            if body:
                self.collector.configure_http_handler(self)
        except Exception:
            logger.exception("metrics: the collector failed to render /metrics")
            self.clear()
            self.set_status(500)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("metrics collector error (see the scheduler log)\n")
            return
        if body:
            self.write(body)

    def write_error_body(self, status_code: int, message: str) -> None:
        self.write_tornado_error_page(status_code)  # as before it had the common base
