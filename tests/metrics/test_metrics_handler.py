"""GET /metrics served by a real Tornado server on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
import tornado.httpserver
import tornado.web
from tornado.netutil import bind_sockets

from luigid.core.model import Task
from luigid.metrics import MetricsCollector, MetricsHandler, NoMetricsCollector
from luigid.metrics.prometheus_collector import PrometheusCollector
from tests.metrics.metrics_helpers import parse_samples, sample


@pytest.fixture
def serve() -> Iterator[Callable[[MetricsCollector], str]]:
    """Start a server exposing a collector at /metrics; returns its base URL."""
    stops = []

    def start(collector: MetricsCollector) -> str:
        sockets = bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        ready = threading.Event()
        loop_box: list[asyncio.AbstractEventLoop] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            app = tornado.web.Application([(r"/metrics", MetricsHandler, {"collector": collector})])
            server = tornado.httpserver.HTTPServer(app)
            server.add_sockets(sockets)
            loop_box.append(loop)
            ready.set()
            loop.run_forever()
            server.stop()
            loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        ready.wait(5)
        stops.append((loop_box[0], thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for loop, thread in stops:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_prometheus_metrics_are_served_in_text_format(
    serve: Callable[[MetricsCollector], str], make_task: Callable[..., Task]
) -> None:
    collector = PrometheusCollector.from_sections({})
    collector.handle_task_started(make_task("Ingest"))
    collector.set_state_probe(
        lambda: {"tasks_by_status": {"RUNNING": 1}, "workers_active": 1, "workers_disabled": 0}
    )
    reply = requests.get(serve(collector) + "/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=")
    samples = parse_samples(reply.text)
    assert sample(samples, "luigi_task_started_total", family="Ingest") == 1
    assert sample(samples, "luigid_tasks", status="RUNNING") == 1


def test_collector_with_nothing_to_expose_answers_empty(serve: Callable[[MetricsCollector], str]) -> None:
    reply = requests.get(serve(NoMetricsCollector()) + "/metrics", timeout=10)
    assert reply.status_code == 200
    assert reply.content == b""


def test_a_failing_collector_answers_500_and_the_server_keeps_serving(
    serve: Callable[[MetricsCollector], str], caplog: pytest.LogCaptureFixture, allow_error_logs: None
) -> None:
    class Flaky(NoMetricsCollector):
        calls = 0

        def generate_latest(self) -> str:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("label mismatch")
            return "ok_metric 1\n"

    url = serve(Flaky()) + "/metrics"
    first = requests.get(url, timeout=10)
    assert first.status_code == 500
    assert "Traceback" not in first.text
    second = requests.get(url, timeout=10)
    assert second.status_code == 200
    assert second.text == "ok_metric 1\n"
    assert "failed to render /metrics" in caplog.text
