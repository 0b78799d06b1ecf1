"""Every kind of bad /api input gets a 4xx with a JSON error naming the problem, the server
keeps serving, and the state still saves and loads (issue 7, section 1)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from tests.support import check_invariants
from tests.support.portrait import known_task
from tests.web.support import LuigidCase, error_of, save_and_reload


class TestBadInput(LuigidCase):
    def setUp(self) -> None:
        super().setUp()
        # some state for bad calls to (not) damage
        assert (
            self.post("add_task", {"worker": "w", "task_id": "A", "family": "A", "deps": ["B"]}).code == 200
        )
        assert self.post("add_task", {"worker": "w", "task_id": "B", "family": "B"}).code == 200

    def tearDown(self) -> None:
        # after every bad call: still answering, invariants hold, state saves and loads
        assert self.post("ping", {"worker": "w"}).code == 200
        check_invariants(self.scheduler)
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            save_and_reload(self.scheduler, folder)
        super().tearDown()

    def refused(self, response: Any, status: int = 400) -> str:
        assert response.code == status, (response.code, response.body[:300])
        return error_of(response)

    def test_malformed_json(self) -> None:
        message = self.refused(self.post("add_task", raw=b"data=%7Bnot+json"))
        assert "'data' is not valid JSON" in message

    def test_json_that_is_not_an_object(self) -> None:
        for data in ([1, 2], "text", 3, None, True):
            message = self.refused(self.post("add_task", raw=self.form(data)))
            assert "must be a JSON object" in message

    def test_text_where_a_number_is_due(self) -> None:
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": "X", "priority": "high"}))
        assert message == "add_task: 'priority' must be a finite number, got a string"

    def test_not_a_number_priority(self) -> None:
        raw = b"data=" + urllib.parse.quote('{"worker": "w", "task_id": "X", "priority": NaN}').encode()
        assert "'priority' must be a finite number" in self.refused(self.post("add_task", raw=raw))

    def test_list_where_a_dict_is_due(self) -> None:
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": "X", "resources": ["cpu"]}))
        assert "'resources' must be an object, got a list" in message
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": "X", "params": [1]}))
        assert "'params' must be an object" in message

    def test_dict_where_a_list_is_due(self) -> None:
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": "X", "deps": {"a": 1}}))
        assert "'deps' must be a list" in message

    def test_wrong_type_inside_a_list_names_the_element(self) -> None:
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": "X", "deps": ["ok", 7]}))
        assert "'deps[1]' must be a string, got a number" in message

    def test_negative_resource_amount(self) -> None:
        message = self.refused(
            self.post("add_task", {"worker": "w", "task_id": "X", "resources": {"cpu": -1}})
        )
        assert "'resources.cpu' must be a finite number of at least 0" in message

    def test_null_for_a_required_id(self) -> None:
        for method, data in (
            ("add_task", {"worker": "w", "task_id": None}),
            ("add_task", {"worker": None, "task_id": "X"}),
            ("fetch_error", {"task_id": None}),
            ("re_enable_task", {"task_id": None}),
            ("count_pending", {"worker": None}),
            ("ping", {"worker": None}),
        ):
            message = self.refused(self.post(method, data))
            assert "must be a string, got null" in message, (method, message)

    def test_id_of_the_wrong_type(self) -> None:
        for method, data in (
            ("fetch_error", {"task_id": ["A"]}),
            ("get_work", {"worker": {"w": 1}}),
            ("disable_worker", {"worker": 5}),
            ("add_scheduler_message_response", {"task_id": "A", "message_id": [], "response": 1}),
        ):
            assert "must be a string" in self.refused(self.post(method, data)), method

    def test_missing_required_argument(self) -> None:
        message = self.refused(self.post("fetch_error", {}))
        assert message == "fetch_error: missing argument(s): task_id"
        message = self.refused(self.post("ping", {}))
        assert "worker" in message

    def test_unknown_argument_where_luigi_takes_none(self) -> None:
        message = self.refused(self.post("re_enable_task", {"task_id": "A", "bogus": 1}))
        assert message == "re_enable_task: unknown argument(s): bogus"

    def test_unknown_argument_where_luigi_takes_kwargs_is_accepted(self) -> None:
        response = self.post(
            "add_task", {"worker": "w", "task_id": "C", "family": "C", "from_the_future": [1]}
        )
        assert response.code == 200
        assert self.post("task_list", {"status": "PENDING", "new_filter": True}).code == 200

    def test_self_is_no_argument_even_where_luigi_takes_kwargs(self) -> None:
        """Found by the fuzz test: ``self`` passed on to a method taking ``**kwargs`` was a 500."""
        message = self.refused(self.post("get_work", {"worker": "w1", "self": None}))
        assert message == "get_work: 'self' is not an argument"
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": "C", "self": 1}))
        assert message == "add_task: 'self' is not an argument"
        message = self.refused(self.post("re_enable_task", {"task_id": "A", "self": 1}))
        assert message == "re_enable_task: 'self' is not an argument"

    def test_unknown_method(self) -> None:
        message = self.refused(self.post("drop_tables", {}), 404)
        assert "unknown method: 'drop_tables'" in message

    def test_unknown_status(self) -> None:
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": "A", "status": "EXPLODED"}))
        assert "'status' must be one of PENDING" in message
        assert known_task(self.scheduler, "A").status == "PENDING"

    def test_non_utf8_bytes(self) -> None:
        for raw in (b"data=%FF%FE%7B%7D", b"data=\xff\xfe{}", b'data={"worker": "\xc3\x28"}'):
            message = self.refused(self.post("ping", raw=raw))
            assert "data" in message

    def test_lone_surrogate_in_an_id(self) -> None:
        raw = b"data=" + urllib.parse.quote('{"worker": "w", "task_id": "A\\ud800"}').encode()
        assert "'task_id' is not valid Unicode text" in self.refused(self.post("add_task", raw=raw))

    def test_bad_form_body(self) -> None:
        body = b"--x\r\nnonsense"
        response = self.post("ping", raw=body, headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert response.code == 400
        error_of(response)

    def test_compressed_form_body_is_refused_with_a_message(self) -> None:
        response = self.post("ping", raw=b"\x1f\x8b", headers={"Content-Encoding": "gzip"})
        assert "Content-Encoding" in self.refused(response)

    def test_very_deep_json(self) -> None:
        deep = "[" * 100_000 + "]" * 100_000
        raw = urllib.parse.urlencode(
            {"data": '{"worker": "w", "task_id": "X", "expl": ' + deep + "}"}
        ).encode()
        assert "nested too deeply" in self.refused(self.post("add_task", raw=raw))
        nested: Any = "leaf"
        for _ in range(200):
            nested = {"k": nested}
        message = self.refused(
            self.post("add_task", {"worker": "w", "task_id": "X", "params": {"p": nested}})
        )
        assert "nested too deeply" in message

    def test_100k_character_task_id(self) -> None:
        long_id = "T" * 100_000
        message = self.refused(self.post("add_task", {"worker": "w", "task_id": long_id}))
        assert "'task_id' is 100000 characters long; ids may have at most 4096" in message
        message = self.refused(
            self.post("add_task", {"worker": "w", "task_id": "X", "deps": ["ok", long_id]})
        )
        assert "'deps[1]' is 100000 characters long" in message
        assert len(message) < 300  # the id is not echoed back
        assert self.refused(self.post("fetch_error", {"task_id": long_id}))
        assert "'task_id' is 100000 characters long" in self.refused(
            self.get("fetch_error", {"task_id": long_id})
        )
        assert self.scheduler.state.get_task(long_id) is None

    def test_very_large_deps_list_is_accepted(self) -> None:
        deps = [f"Dep_{i}" for i in range(50_000)]
        response = self.post("add_task", {"worker": "w", "task_id": "Wide", "family": "Wide", "deps": deps})
        assert response.code == 200
        assert len(known_task(self.scheduler, "Wide").deps) == 50_000

    def test_long_dependency_chain(self) -> None:
        for i in range(3000):
            data = {"worker": "w", "task_id": f"C{i}", "family": "C", "deps": [f"C{i + 1}"]}
            assert self.post("add_task", data).code == 200
        graph = json.loads(self.post("dep_graph", {"task_id": "C0"}).body)["response"]
        assert len(graph) == 3001
        assert graph["C3000"]["status"] == "UNKNOWN"

    def test_worker_info_must_count_processes_with_an_integer(self) -> None:
        message = self.refused(self.post("add_worker", {"worker": "w", "info": [["workers", "many"]]}))
        assert "'info.workers' must be an integer" in message
        message = self.refused(self.post("add_worker", {"worker": "w", "info": [["a", 1, 2]]}))
        assert "[name, value] pair" in message
        # what luigi workers send: a list of pairs, or a dict
        assert self.post("add_worker", {"worker": "w", "info": [["host", "h"], ["workers", 2]]}).code == 200
        assert self.post("add_worker", {"worker": "w", "info": {"workers": 3}}).code == 200

    def test_decrease_resources_needs_numbers(self) -> None:
        data = {"task_id": "A", "decrease_resources": {"cpu": "lots"}}
        assert "'decrease_resources.cpu' must be a finite number" in self.refused(
            self.post("decrease_running_task_resources", data)
        )

    def test_update_resources_amounts(self) -> None:
        assert "'gpu' must be a finite number of at least 0" in self.refused(
            self.post("update_resources", {"gpu": "two"})
        )
        assert self.post("update_resources", {"gpu": 2}).code == 200

    def test_scheduler_only_arguments(self) -> None:
        message = self.refused(self.post("update_metrics_task_started", {"task": {"family": "A"}}))
        assert "cannot be sent over HTTP" in message

    def test_errors_reach_the_http_reason_phrase(self) -> None:
        response = self.post("add_task", {"worker": "w", "task_id": "X", "priority": "<script>"})
        assert response.code == 400
        assert response.reason.startswith("add_task: 'priority' must be a finite number")
        assert "<" not in response.reason

    def test_query_string_calls_are_checked_too(self) -> None:
        message = self.refused(self.get("task_list", {"limit": "no"}))
        assert "'limit' must be true or false" in message


@pytest.mark.parametrize(
    ("method", "data"),
    [
        # shapes luigi 3.8.1 workers send (see luigi/worker.py), which must stay accepted
        (
            "add_worker",
            {"worker": "w", "info": [["salt", "x"], ["workers", 1], ["host", "h"], ["first_task", "T"]]},
        ),
        (
            "add_task",
            {
                "worker": "w",
                "task_id": "T_1_abc",
                "status": "PENDING",
                "deps": None,
                "runnable": True,
                "priority": 0,
                "resources": {},
                "params": {"a": "1", "b": "[1, 2]"},
                "family": "T",
                "module": "pipeline",
                "batchable": False,
                "retry_policy_dict": {
                    "retry_count": None,
                    "disable_hard_timeout": None,
                    "disable_window": 3600,
                },
                "accepts_messages": False,
                "owners": ["team@example.com"],
                "param_visibilities": {"a": 0, "b": 1},
            },
        ),
        ("add_task", {"worker": "w", "task_id": "T", "status": "SUSPENDED"}),
        ("add_task", {"worker": "w", "task_id": "T", "status": "RUNNING", "tracking_url": "http://t/1"}),
        (
            "add_task_batcher",
            {"worker": "w", "task_family": "T", "batched_args": ["a"], "max_batch_size": 1e999},
        ),
        ("get_work", {"worker": "w", "host": "h", "assistant": False, "current_tasks": []}),
        ("count_pending", {"worker": "w"}),
        ("set_task_status_message", {"task_id": "T", "status_message": "50% done"}),
        ("set_task_progress_percentage", {"task_id": "T", "progress_percentage": 50}),
        ("decrease_running_task_resources", {"task_id": "T", "decrease_resources": {"cpu": 1}}),
        ("report_task_statistics", {"task_id": "T", "statistics": {"rows": 3}}),
        ("add_scheduler_message_response", {"task_id": "T", "message_id": "m", "response": "ok"}),
        (
            "announce_scheduling_failure",
            {"worker": "w", "task_name": "T()", "family": "T", "params": {}, "expl": "boom", "owners": []},
        ),
    ],
)
def test_what_luigi_workers_send_is_accepted(method: str, data: dict[str, Any]) -> None:
    from luigid.web.validation import check_arguments

    check_arguments(method, data)
