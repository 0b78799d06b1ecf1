"""``GET /ui/tasks``, the UI's own task-list endpoint, over real HTTP: its answer's shape,
every bad parameter answered with a 400 and a JSON error, and luigi's API left as it was."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from tests.web.support import LuigidCase


class TaskBrowserTest(LuigidCase):
    def setUp(self) -> None:
        super().setUp()
        s = self.scheduler
        s.add_task(worker="w", task_id="Leaf_1", family="Leaf", params={"n": "1"}, status="FAILED")
        for i in range(5):
            s.add_task(worker="w", task_id=f"Mid_{i}", family="Mid", params={"i": str(i)}, deps=["Leaf_1"])
        s.add_task(worker="w", task_id="Done_1", family="Done", status="DONE")

    def browse(self, query: str = "", code: int = 200) -> Any:
        resp = self.fetch(f"/ui/tasks?{query}")
        assert resp.code == code, (resp.code, resp.body)
        assert resp.headers["Content-Type"].startswith("application/json")
        return json.loads(resp.body)

    def test_counts_families_and_a_page(self) -> None:
        got = self.browse("status=UPSTREAM_FAILED&sort=name&limit=2&offset=1")
        assert got["counts"]["UPSTREAM_FAILED"] == 5 and got["counts"]["PENDING"] == 0
        assert got["counts"][""] == 7 and got["counts"]["FAILED"] == 1
        assert got["families"] == {"Mid": 5} and got["total"] == 5 and got["offset"] == 1
        assert [next(iter(t)) for t in got["tasks"]] == ["Mid_1", "Mid_2"]
        assert got["boxes"] == ["UPSTREAM_FAILED", "UPSTREAM_FAILED"]
        assert got["upstream_backlog"] == 0
        # each entry is the task as task_list shows it
        listed = self.scheduler.task_list("PENDING", "")
        assert got["tasks"][0]["Mid_1"] == listed["Mid_1"]

    def test_search_and_family(self) -> None:
        got = self.browse("search=mid%20i%3D3")
        assert got["total"] == 1 and got["counts"][""] == 1 and next(iter(got["tasks"][0])) == "Mid_3"
        got = self.browse("family=Done")
        assert got["total"] == 1 and got["boxes"] == ["DONE"]

    def test_bad_parameters_are_400_with_a_message(self) -> None:
        for query, word in [
            ("status=NOPE", "status"),
            ("sort=-color", "sort"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("offset=-1", "offset"),
            ("offset=ten", "offset"),
            ("search=%ff", "search"),
        ]:
            got = self.browse(query, code=400)
            assert set(got) == {"error"} and got["error"].startswith(word), (query, got)

    def test_luigis_api_is_unchanged(self) -> None:
        data = urllib.parse.quote(json.dumps({"status": "PENDING", "upstream_status": ""}))
        resp = self.fetch(f"/api/task_list?data={data}")
        assert set(json.loads(resp.body)["response"]) == {f"Mid_{i}" for i in range(5)}


class ScanCopyTest(LuigidCase):
    """A scan never holds a copy of every task between its steps (it walks the state's own
    entry lists, ``State.walk``), so there is none for a collection in between to walk."""

    def test_a_scan_holds_no_copy_of_every_task_between_its_steps(self) -> None:
        import asyncio
        import gc
        from unittest import mock

        from luigid.core import browse
        from luigid.core.model import Task
        from luigid.web import taskbrowser

        for i in range(2 * browse.SCAN_STEP + 1):
            self.scheduler.add_task(worker="w", task_id=f"Leaf_{i}", family="Leaf", params={"n": str(i)})
        walked: list[bool] = []

        state = self.scheduler.state

        def is_a_copy(obj: object) -> bool:
            """A big list of this scheduler's tasks other than its own entry lists."""
            if type(obj) is not list or len(obj) <= 2 * browse.SCAN_STEP or type(obj[0]) is not Task:
                return False
            if state.get_task(obj[0].id) is not obj[0]:
                return False  # another test's
            return not any(obj is log.tasks for log in state.entries._logs.values())

        def watched(*args: Any) -> Any:
            steps = browse.browse(*args)
            loop = asyncio.get_running_loop()
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    return done.value
                # in the turn of the loop after this step, as another request would run
                loop.call_soon(lambda: walked.append(any(is_a_copy(o) for o in gc.get_objects())))
                yield None

        with mock.patch.object(taskbrowser, "browse", watched):
            for query in ("search=leaf&sort=name", "sort=name", "status=PENDING&sort=priority"):
                resp = self.fetch(f"/ui/tasks?{query}")
                assert resp.code == 200 and json.loads(resp.body)["total"] == 2 * browse.SCAN_STEP + 1
        assert len(walked) >= 6 and not any(walked)

    def test_browsers_asking_at_once_take_turns_of_the_event_loop(self) -> None:
        """Each turn of the loop runs one step of UI work, however many scans are under way:
        their steps would otherwise add up within one turn."""
        import asyncio
        from unittest import mock

        from luigid.core import browse
        from luigid.web import taskbrowser

        for i in range(3 * browse.SCAN_STEP):
            self.scheduler.add_task(worker="w", task_id=f"Leaf_{i}", family="Leaf", params={"n": str(i)})
        turns = [0]
        steps_at: list[int] = []

        def ticking() -> None:
            turns[0] += 1
            asyncio.get_running_loop().call_soon(ticking)

        def watched(*args: Any) -> Any:
            steps = browse.browse(*args)
            while True:
                steps_at.append(turns[0])
                try:
                    next(steps)
                except StopIteration as done:
                    return done.value
                yield None

        async def all_at_once() -> list[Any]:
            ticking()
            queries = ("search=leaf&sort=name", "sort=name", "status=PENDING&sort=priority", "sort=-name")
            return await asyncio.gather(
                *(self.http_client.fetch(self.get_url(f"/ui/tasks?{q}")) for q in queries)
            )

        with mock.patch.object(taskbrowser, "browse", watched):
            answers = self.io_loop.run_sync(all_at_once)
        assert all(resp.code == 200 for resp in answers)
        assert len(steps_at) >= 4 * 3  # every scan took several steps
        assert len(set(steps_at)) == len(steps_at)  # never two in one turn


def test_a_request_cancelled_while_waiting_for_its_turn_holds_no_one_up() -> None:
    import asyncio

    from luigid.web.taskbrowser import Turns

    async def scenario() -> list[str]:
        turns = Turns()
        order: list[str] = []

        async def step(name: str, times: int) -> None:
            for _ in range(times):
                await turns.wait()
                order.append(name)

        first = asyncio.ensure_future(step("a", 3))
        gone = asyncio.ensure_future(step("gone", 3))
        last = asyncio.ensure_future(step("b", 3))
        await asyncio.sleep(0)
        gone.cancel()  # waiting in the queue
        await asyncio.wait_for(asyncio.gather(first, last), 5)
        # handed the turn and cancelled before it ran: the turn goes on to the next
        turns._taken = True  # a step under way
        handed = asyncio.ensure_future(step("handed", 1))
        after = asyncio.ensure_future(step("after", 1))
        await asyncio.sleep(0)
        turns._next()  # as the turn after a step does
        handed.cancel()
        await asyncio.wait_for(after, 5)
        return order

    order = asyncio.run(scenario())
    assert order.count("a") == 3 and order.count("b") == 3 and "gone" not in order
    assert order[-1] == "after" and "handed" not in order
