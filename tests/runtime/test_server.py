"""The HTTP surface over a real loopback socket: routing, validation, errors, CORS."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import unittest.mock
import urllib.parse
from typing import Any

import tornado.web
from tornado.httpclient import HTTPResponse
from tornado.testing import AsyncHTTPTestCase
from tornado.web import Application

from luigid.config import CorsConfig, LuigidConfig, SchedulerConfig
from luigid.core import replies as replies_module
from luigid.core.rpc import Fragments
from luigid.history.config import HistoryConfig
from luigid.metrics import NoMetricsCollector
from luigid.runtime.server import app
from luigid.scheduler import Scheduler
from tests.support.portrait import known_task


def _scheduler(cors: CorsConfig | None = None) -> Scheduler:
    config = LuigidConfig(
        scheduler=SchedulerConfig(state_path="/nonexistent/state.pickle"), cors=cors or CorsConfig()
    )
    return Scheduler(config)


class ServerCase(AsyncHTTPTestCase):
    cors: CorsConfig | None = None

    def get_app(self) -> Application:
        self.scheduler = _scheduler(cors=self.cors)
        self.application = app(self.scheduler)
        return self.application

    def api(
        self, method: str, data: Any = None, *, via: str = "POST", raw: bytes | None = None, **kw: Any
    ) -> HTTPResponse:
        if via == "GET":
            query = "" if data is None else "?" + urllib.parse.urlencode({"data": json.dumps(data)})
            return self.fetch(f"/api/{method}{query}", **kw)
        body = raw if raw is not None else urllib.parse.urlencode({"data": json.dumps(data or {})}).encode()
        return self.fetch(f"/api/{method}", method="POST", body=body, **kw)

    def reply(self, response: HTTPResponse) -> Any:
        return json.loads(response.body)


class TestRpcRouting(ServerCase):
    def test_post_form_body_and_get_query_both_work(self) -> None:
        post = self.api("ping", {"worker": "w1"})
        get = self.api("ping", {"worker": "w1"}, via="GET")
        assert post.code == get.code == 200
        assert self.reply(post) == self.reply(get) == {"response": {"rpc_messages": []}}

    def test_reply_wraps_result_in_response(self) -> None:
        self.api("add_task", {"worker": "w", "task_id": "A()", "family": "A"})
        work = self.reply(self.api("get_work", {"worker": "w", "host": "h"}))["response"]
        assert work["task_id"] == "A()"
        assert work["task_family"] == "A"

    def test_unknown_method_is_404_with_message(self) -> None:
        response = self.api("drop_all_tables", {})
        assert response.code == 404
        assert "drop_all_tables" in self.reply(response)["error"]

    def test_private_scheduler_attributes_are_not_routed(self) -> None:
        for name in ("_state", "load", "dump", "_update_priority", "__init__"):
            assert self.api(name, {}).code == 404

    def test_missing_data_means_no_arguments(self) -> None:
        response = self.fetch("/api/is_paused")
        assert self.reply(response) == {"response": {"paused": False}}


class TestBadInput(ServerCase):
    def _assert_400(self, response: HTTPResponse, *fragments: str) -> None:
        assert response.code == 400, response.body
        message = self.reply(response)["error"]
        for fragment in fragments:
            assert fragment in message
        assert "Traceback" not in message

    def test_malformed_json(self) -> None:
        self._assert_400(self.api("ping", raw=b"data=%7Bnot+json"), "not valid JSON")

    def test_json_that_is_not_an_object(self) -> None:
        self._assert_400(self.api("ping", [1, 2, 3]), "JSON object")

    def test_missing_required_argument(self) -> None:
        self._assert_400(self.api("fetch_error", {}), "task_id")

    def test_unknown_argument_for_a_method_without_kwargs(self) -> None:
        self._assert_400(self.api("is_paused", {"bogus": 1}), "bogus")

    def test_extra_arguments_accepted_where_luigi_accepts_kwargs(self) -> None:
        response = self.api("task_list", {"status": "PENDING", "something_new": True})
        assert response.code == 200

    def test_add_task_without_worker(self) -> None:
        self._assert_400(self.api("add_task", {"task_id": "A()"}), "worker")

    def test_non_utf8_body(self) -> None:
        self._assert_400(self.api("ping", raw=b"data=%FF%FE%7B%7D"))

    def test_server_keeps_serving_after_bad_requests(self) -> None:
        self.api("ping", raw=b"data=%7B")
        self.api("nope", {})
        assert self.api("ping", {"worker": "w"}).code == 200

    def test_unknown_path_is_json_404(self) -> None:
        response = self.fetch("/no/such/page")
        assert response.code == 404
        assert "no such path" in self.reply(response)["error"]


class TestLargeBodies(ServerCase):
    def test_ten_megabyte_add_task_is_accepted(self) -> None:
        deps = [f"Dep_{i:08d}_{'x' * 90}" for i in range(89_000)]
        body = urllib.parse.urlencode({"data": json.dumps({"worker": "w", "task_id": "Big()", "deps": deps})})
        assert 10_000_000 <= len(body) <= 10 * 1024 * 1024  # 10 MB: within the default limit
        # generous bound: parsing 10 MB takes a while on a loaded 2-core machine
        response = self.io_loop.run_sync(
            lambda: self.http_client.fetch(
                self.get_url("/api/add_task"), method="POST", body=body, request_timeout=120
            ),
            timeout=120,
        )
        assert response.code == 200
        assert len(known_task(self.scheduler, "Big()").deps) == 89_000


class TestRootAndStatic(ServerCase):
    def test_root_redirects_relatively_to_the_visualiser(self) -> None:
        response = self.fetch("/", follow_redirects=False)
        assert response.code == 302
        assert response.headers["Location"] == "static/visualiser/index.html"

    def test_head_root_is_the_health_check(self) -> None:
        response = self.fetch("/", method="HEAD")
        assert response.code == 204

    def test_visualiser_page_is_served_with_a_title(self) -> None:
        response = self.fetch("/static/visualiser/index.html")
        assert response.code == 200
        assert b"<title>" in response.body


class TestCorsDisabled(ServerCase):
    def test_no_cors_headers_by_default(self) -> None:
        response = self.api("ping", {"worker": "w"}, headers={"Origin": "http://example.test"})
        assert "Access-Control-Allow-Origin" not in response.headers


class TestCorsAllowList(ServerCase):
    cors = CorsConfig(
        enabled=True, allowed_origins=("http://good.test",), allow_credentials=True, exposed_headers="X-Thing"
    )

    def test_listed_origin_is_echoed_with_vary(self) -> None:
        response = self.api("ping", {"worker": "w"}, headers={"Origin": "http://good.test"})
        assert response.headers["Access-Control-Allow-Origin"] == "http://good.test"
        assert "Origin" in [v.strip() for v in response.headers["Vary"].split(",")]

    def test_other_origin_gets_nothing(self) -> None:
        response = self.api("ping", {"worker": "w"}, headers={"Origin": "http://evil.test"})
        assert "Access-Control-Allow-Origin" not in response.headers

    def test_null_origin_refused_unless_allowed(self) -> None:
        response = self.api("ping", {"worker": "w"}, headers={"Origin": "null"})
        assert "Access-Control-Allow-Origin" not in response.headers

    def test_preflight(self) -> None:
        response = self.fetch("/api/ping", method="OPTIONS", headers={"Origin": "http://good.test"})
        assert response.code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "http://good.test"
        assert response.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
        assert response.headers["Access-Control-Allow-Headers"] == "Accept, Content-Type, Origin"
        assert response.headers["Access-Control-Max-Age"] == "86400"
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Access-Control-Expose-Headers"] == "X-Thing"

    def test_preflight_from_unlisted_origin_has_no_cors_headers(self) -> None:
        response = self.fetch("/api/ping", method="OPTIONS", headers={"Origin": "http://evil.test"})
        assert response.code == 204
        assert "Access-Control-Allow-Origin" not in response.headers


class TestCorsAnyAndNull(ServerCase):
    cors = CorsConfig(enabled=True, allow_any_origin=True, allow_null_origin=True)

    def test_any_origin_gets_star(self) -> None:
        response = self.api("ping", {"worker": "w"}, headers={"Origin": "http://anything.test"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"

    def test_null_origin_when_allowed(self) -> None:
        response = self.api("ping", {"worker": "w"}, headers={"Origin": "null"})
        assert response.headers["Access-Control-Allow-Origin"] == "null"


class TestStreamedReplies(ServerCase):
    """Big replies (task_list, graph, dep graphs) are sent in pieces with the event loop free
    in between; what arrives is exactly the reply the scheduler computes in-process."""

    def _chain(self, n: int) -> None:
        for i in range(n):
            deps = [f"T{i - 1}"] if i else []
            self.scheduler.add_task(worker="w", task_id=f"T{i}", family="T", params={"i": str(i)}, deps=deps)

    def test_task_list_and_graphs_arrive_whole(self) -> None:
        self._chain(2500)  # several pieces
        for method, args in [
            ("task_list", {"status": "PENDING"}),
            ("graph", {}),
            ("dep_graph", {"task_id": "T2499"}),
            ("inverse_dep_graph", {"task_id": "T0"}),
            ("task_list", {"search": "T(i=24"}),
        ]:
            over_http = self.reply(self.api(method, args))["response"]
            in_process = getattr(self.scheduler, method)(**args)
            assert over_http == json.loads(json.dumps(in_process)), method
            assert len(over_http) > 0

    def test_gzip_for_clients_that_accept_it(self) -> None:
        self._chain(2500)
        plain = self.api("graph", {}, decompress_response=False)
        packed = self.api("graph", {}, decompress_response=False, headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in plain.headers
        assert packed.headers["Content-Encoding"] == "gzip"
        assert len(packed.body) < len(plain.body) / 5
        assert json.loads(gzip.decompress(packed.body)) == json.loads(plain.body)

    def test_a_client_that_hangs_up_stops_the_reply_being_made(self) -> None:
        self._chain(30_000)
        pieces = unittest.mock.patch.object(replies_module, "FRAGMENT_SIZE", 100)  # 300 of them
        pieces.start()
        self.addCleanup(pieces.stop)
        made: list[Any] = []
        original = self.scheduler.replies.graph

        def counted() -> Fragments:
            def pieces_made() -> Any:
                for piece in original():
                    made.append(piece)
                    yield piece

            return Fragments(pieces_made())

        in_flight = self.application.settings["in_flight"]

        async def hang_up() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.get_http_port())
            writer.write(b"GET /api/graph HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.read(100)).startswith(b"HTTP/1.1 200")
            writer.transport.abort()  # gone, without reading the rest
            while in_flight.count:
                await asyncio.sleep(0.01)

        with unittest.mock.patch.object(self.scheduler.replies, "graph", counted):
            self.io_loop.run_sync(hang_up, timeout=60)
        # of 300 pieces, about 6 are made here before a write finds the client gone; a third
        # leaves room for bigger socket buffers and still fails a server that makes them all
        assert 0 < len(made) < 100, len(made)
        assert self.reply(self.api("ping", {"worker": "w"})) == {"response": {"rpc_messages": []}}

    def test_counts_instead_of_tasks_past_the_limit(self) -> None:
        self._chain(30)
        reply = self.reply(self.api("task_list", {"status": "PENDING", "max_shown_tasks": 10}))
        assert reply == {"response": {"num_tasks": 30}}
        reply = self.reply(self.api("task_list", {"search": "T", "max_shown_tasks": 10}))
        assert reply == {"response": {"num_tasks": 30}}

    def test_empty_and_unknown(self) -> None:
        assert self.reply(self.api("graph", {})) == {"response": {}}
        assert self.reply(self.api("dep_graph", {"task_id": "nope"})) == {"response": {}}

    def test_other_requests_are_answered_while_a_big_reply_is_built(self) -> None:
        """A worker in another process gets its ping answered while a big reply is being built.
        (The client must be another process, as real workers are: a client thread in this
        process would be starved by the GIL, and one on this loop by the loop itself.)"""
        self._chain(30_000)
        pieces = unittest.mock.patch.object(replies_module, "FRAGMENT_SIZE", 100)
        pieces.start()
        self.addCleanup(pieces.stop)
        finished: list[str] = []
        in_flight = self.application.settings["in_flight"]
        pinger_code = (
            "import http.client, sys\n"
            f"c = http.client.HTTPConnection('127.0.0.1', {self.get_http_port()}, timeout=60)\n"
            "c.connect(); print('ready', flush=True); sys.stdin.readline()\n"
            "c.request('POST', '/api/ping', body='data=%7B%22worker%22%3A%22w%22%7D',\n"
            "          headers={'Content-Type': 'application/x-www-form-urlencoded'})\n"
            "assert c.getresponse().status == 200\n"
        )

        async def graph() -> None:
            body = urllib.parse.urlencode({"data": "{}"})
            await self.http_client.fetch(
                self.get_url("/api/graph"), method="POST", body=body, request_timeout=120
            )
            finished.append("graph")

        async def scenario() -> None:
            pinger = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                pinger_code,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert pinger.stdin is not None and pinger.stdout is not None
            assert (await pinger.stdout.readline()).strip() == b"ready"  # connected, waiting
            big = asyncio.ensure_future(graph())
            while in_flight.count == 0:  # the server is now building the graph reply
                await asyncio.sleep(0.001)
            pinger.stdin.write(b"go\n")
            assert await pinger.wait() == 0
            finished.append("ping")
            await big

        self.io_loop.run_sync(scenario, timeout=120)
        assert finished == ["ping", "graph"]


def test_a_long_prune_round_hands_the_loop_back_between_slices() -> None:
    """The periodic prune runs a round a slice at a time, letting other callbacks (requests)
    run in between, and ends with the round done."""
    from luigid.runtime.server import Server

    sched = Scheduler(SchedulerConfig(worker_disconnect_delay=10, remove_delay=100))
    for i in range(50):
        sched.add_task(task_id=f"T_{i}", worker="w1", status="PENDING", family="T", params={})
    next(iter(sched.state.workers())).last_active -= 60  # w1 went silent a minute ago
    sched.pruner.step = 5
    sched.pruner.slice_tasks = 1  # a slice is one step
    server = Server(sched, api_port=0, address="127.0.0.1")

    async def scenario() -> int:
        turns = 0
        server._periodic_prune()
        pruning = server._pruning
        assert pruning is not None
        server._periodic_prune()  # the next tick while a round is under way starts no second one
        assert server._pruning is pruning
        while not pruning.done():
            turns += 1
            await asyncio.sleep(0)
        await pruning
        return turns

    assert asyncio.run(scenario()) > 10
    assert list(sched.state.workers()) == []
    assert all(not t.stakeholders and t.remove is not None for t in sched.state.tasks())


def test_no_snapshot_starts_during_a_prune_round(tmp_path: Any) -> None:
    """A snapshot child alive while a round frees 100k tasks makes every freed page a copy;
    the snapshot due meanwhile waits for the round's end."""
    from luigid.runtime.server import Server

    path = tmp_path / "state.pickle"
    sched = Scheduler(SchedulerConfig(worker_disconnect_delay=10, state_path=str(path)))
    for i in range(20):
        sched.add_task(task_id=f"T_{i}", worker="w1", status="PENDING", family="T", params={})
    next(iter(sched.state.workers())).last_active -= 60
    sched.pruner.step = 2
    sched.pruner.slice_tasks = 1
    server = Server(sched, api_port=0, address="127.0.0.1")
    server.snapshots.fork = False  # written inline: the file appears at once when taken
    server.snapshots.interval = 1e-9  # always due

    async def scenario() -> list[bool]:
        seen = []
        server._periodic_prune()
        assert server._pruning is not None
        while not server._pruning.done():
            server._snapshot_tick()
            seen.append(path.exists())
            await asyncio.sleep(0.005)
        server._snapshot_tick()
        seen.append(path.exists())
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) > 3 and not any(seen[:-1]) and seen[-1]


class HeldHistory:
    """A task history whose reads wait until released, as a slow database would."""

    config = HistoryConfig()

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    #: nothing queued: pages have no writer to wait for
    accepted = 0
    read_wait = 5.0

    async def caught_up(self, through: int | None = None, timeout: float | None = None) -> int:
        return 0

    def recent_runs(self) -> list[Any]:
        return []

    async def read(self, fn: Any, *args: Any) -> Any:
        self.reading.set()
        await self.release.wait()
        return fn(*args)


class CountingCollector(NoMetricsCollector):
    """Notes the requests in flight while /metrics is being rendered."""

    in_flight: Any = None
    seen: int | None = None

    def generate_latest(self) -> str:
        self.seen = self.in_flight.count
        return "ok 1\n"


class TestEveryRouteCountsInTheShutdownDrain(AsyncHTTPTestCase):
    """Shutdown lets the requests in flight finish: history pages, /metrics and static files
    are counted like API calls (they once bypassed the count)."""

    def get_app(self) -> Application:
        self.history = HeldHistory()
        self.collector = CountingCollector()
        config = LuigidConfig(
            scheduler=SchedulerConfig(state_path="/nonexistent/state.pickle", record_task_history=True)
        )
        scheduler = Scheduler(config, task_history_impl=self.history, metrics_collector=self.collector)
        self.application = app(scheduler)
        self.in_flight = self.collector.in_flight = self.application.settings["in_flight"]
        return self.application

    def test_a_history_page_waiting_on_the_database_is_in_flight(self) -> None:
        async def scenario() -> None:
            page = asyncio.ensure_future(self.http_client.fetch(self.get_url("/history"), raise_error=False))
            await asyncio.wait_for(self.history.reading.wait(), 10)
            assert self.in_flight.count == 1
            self.history.release.set()
            assert (await page).code == 200
            assert self.in_flight.count == 0

        self.io_loop.run_sync(scenario, timeout=30)

    def test_metrics_are_in_flight_while_rendered(self) -> None:
        response = self.fetch("/metrics")
        assert response.code == 200 and response.body == b"ok 1\n"
        assert self.collector.seen == 1
        assert self.in_flight.count == 0

    def test_a_static_file_is_in_flight_while_served(self) -> None:
        seen: list[int] = []
        original = tornado.web.StaticFileHandler.validate_absolute_path

        def noting(handler: Any, root: str, absolute_path: str) -> Any:
            seen.append(self.in_flight.count)
            return original(handler, root, absolute_path)

        with unittest.mock.patch.object(tornado.web.StaticFileHandler, "validate_absolute_path", noting):
            response = self.fetch("/static/visualiser/index.html")
        assert response.code == 200
        assert seen == [1]
        assert self.in_flight.count == 0
