"""Thousands of random and mutated /api calls, valid ones mixed with invalid ones, against a
real server: it always answers (never a 5xx), the state's invariants hold, and the state
saved afterwards loads back equal (issue 7, section 1)."""

from __future__ import annotations

import inspect
import json
import tempfile
import time
import urllib.parse
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luigid.core.rpc import RPC_METHODS
from luigid.runtime.server import app
from luigid.web.validation import SENDABLE_STATUSES
from tests.support import FakeClock, check_invariants
from tests.web.support import KWARGS_ARGUMENTS, LuigidCase, error_of, make_scheduler, save_and_reload

TASKS = ["A", "B", "C", "D", "E", "F"]
WORKERS = ["w1", "w2", "w3"]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
any_json = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
task_id = st.sampled_from(TASKS)
worker = st.sampled_from(WORKERS)
resources = st.dictionaries(st.sampled_from(["cpu", "gpu"]), st.integers(0, 3), max_size=2)

#: Plausible values, by argument name, so that valid calls build up real state.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "task_id": task_id,
    "task": task_id,
    "worker": worker,
    "status": st.sampled_from(SENDABLE_STATUSES),
    "deps": st.one_of(st.none(), st.lists(task_id, max_size=3)),
    "new_deps": st.one_of(st.none(), st.lists(task_id, max_size=2)),
    "current_tasks": st.one_of(st.none(), st.lists(task_id, max_size=2)),
    "resources": st.one_of(st.none(), resources),
    "decrease_resources": resources,
    "priority": st.integers(-5, 5),
    "runnable": st.booleans(),
    "assistant": st.booleans(),
    "batchable": st.one_of(st.none(), st.booleans()),
    "accepts_messages": st.booleans(),
    "include_done": st.booleans(),
    "include_running": st.booleans(),
    "limit": st.booleans(),
    "family": st.sampled_from(["A", "B", "Fam"]),
    "task_family": st.sampled_from(["A", "B", "Fam"]),
    "module": st.one_of(st.none(), st.just("mod")),
    "params": st.dictionaries(st.sampled_from(["a", "b"]), st.text(max_size=5), max_size=2),
    "param_visibilities": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 2), max_size=2),
    "batched_args": st.lists(st.sampled_from(["a", "b"]), max_size=2),
    "max_batch_size": st.one_of(st.integers(1, 5), st.just(float("inf"))),
    "batch_id": st.one_of(st.none(), st.sampled_from(["b1", "b2"])),
    "retry_policy_dict": st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"retry_count": st.one_of(st.none(), st.integers(0, 3)), "disable_window": st.integers(0, 100)}
        ),
    ),
    "owners": st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=2)),
    "info": st.one_of(
        st.lists(st.tuples(st.sampled_from(["host", "workers"]), st.integers(0, 3)).map(list), max_size=2),
        st.fixed_dictionaries({"workers": st.integers(0, 4)}),
    ),
    "n": st.integers(0, 4),
    "amount": st.one_of(st.integers(-1, 5), any_json),
    "resource": st.sampled_from(["cpu", "gpu"]),
    "message_id": st.sampled_from(["m1", "m2"]),
    "host": st.one_of(st.none(), st.just("host")),
    "tracking_url": st.one_of(st.none(), st.just("http://t/1"), st.just("javascript:alert(1)")),
    "max_shown_tasks": st.one_of(st.none(), st.integers(-1, 10)),
    "status_message": any_json,
    "progress_percentage": any_json,
    "expl": any_json,
    "content": any_json,
    "response": any_json,
    "statistics": any_json,
}
#: Every method, the ones workers call most weighted up, and a few that do not exist.
METHODS = [
    *sorted(RPC_METHODS),
    *["add_task"] * 12,
    *["get_work"] * 4,
    *["add_worker", "ping", "set_task_status_message", "decrease_running_task_resources"] * 2,
    *["mark_as_done", "forgive_failures", "re_enable_task", "disable_worker", "prune"],
    "no_such_method",
    "__init__",
    "_state",
]


def parameters(method: str) -> list[inspect.Parameter]:
    spec = RPC_METHODS[method]
    params = [
        p
        for p in list(spec.signature.parameters.values())[1:]
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for m, n in KWARGS_ARGUMENTS if m == method]
    return params + extra


@st.composite
def rpc_call(draw: st.DrawFn) -> tuple[str, str, Any]:
    """(how, method, payload): how is "post", "get" or "raw" (payload is then bytes)."""
    method = draw(st.sampled_from(METHODS))
    if method not in RPC_METHODS or draw(st.integers(0, 19)) == 0:
        return "post", method, draw(any_json)
    args: dict[str, Any] = {}
    for param in parameters(method):
        required = param.default is inspect.Parameter.empty
        if required or param.name in ("task_id", "worker") or draw(st.integers(0, 3)) > 0:
            args[param.name] = draw(PLAUSIBLE.get(param.name, any_json))
    if method == "update_resources":
        args.update(draw(resources))
    mutation = draw(st.integers(0, 9))
    if mutation == 0 and args:  # drop an argument
        args.pop(draw(st.sampled_from(sorted(args))))
    elif mutation == 1 and args:  # a wrong-typed value
        args[draw(st.sampled_from(sorted(args)))] = draw(any_json)
    elif mutation == 2:  # an argument nobody declared
        args[draw(st.text(min_size=1, max_size=8))] = draw(any_json)
    elif mutation == 3:  # an absurd id
        args[draw(st.sampled_from(["task_id", "worker"]))] = "x" * draw(st.sampled_from([4097, 20_000]))
    elif mutation == 4:  # damaged bytes
        body = urllib.parse.urlencode({"data": json.dumps(args)}).encode()
        cut = draw(st.integers(0, len(body)))
        garbage = draw(st.sampled_from([b"\xff\xfe", b"%FF", b"%7B%7B", b"\x00", b"[" * 5000]))
        return "raw", method, body[:cut] + garbage + body[cut:]
    how = "get" if draw(st.integers(0, 4)) == 0 else "post"
    return how, method, args


class TestFuzz(LuigidCase):
    #: over all examples: calls answered 200 and tasks the scheduler ended up holding. A
    #: server that refused every call would keep every invariant; these must not stay 0.
    answered: dict[str, int] = {"examples": 0, "ok": 0, "tasks": 0}

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        if cls.answered["examples"]:
            assert cls.answered["ok"] > 0 and cls.answered["tasks"] > 0, cls.answered

    def get_app(self) -> Any:
        self.clock = FakeClock(time.time())
        patcher = mock.patch("time.time", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.scheduler = make_scheduler(
            resources={"cpu": 2, "gpu": 1},
            retry_delay=5,
            remove_delay=20,
            worker_disconnect_delay=30,
            disable_window=50,
            retry_count=2,
            disable_persist=40,
            stable_done_cooldown_secs=0,
        )
        return app(self.scheduler)

    def send(self, how: str, method: str, payload: Any) -> Any:
        if how == "raw":
            return self.post(method, raw=payload)
        if how == "get":
            return self.get(method, payload)
        return self.post(method, payload)

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(
        st.lists(st.one_of(rpc_call(), rpc_call(), rpc_call(), st.integers(1, 40)), min_size=5, max_size=30)
    )
    def test_server_stays_correct_under_random_calls(self, calls: list[Any]) -> None:
        # each example starts from an empty scheduler (the server keeps the same object)
        self.scheduler.__init__(self.scheduler.settings)  # type: ignore[misc]
        for call in calls:
            if isinstance(call, int):
                self.clock.now += call  # time passes: retries, removals, disconnects come due
                continue
            response = self.send(*call)
            assert response.code < 500, (call[:2], response.code, response.body[:500])
            if response.code == 200:
                assert "response" in json.loads(response.body)
                self.answered["ok"] += 1
            else:
                assert 400 <= response.code < 500
                error_of(response)
        self.answered["examples"] += 1
        self.answered["tasks"] += self.scheduler.state.count()
        check_invariants(self.scheduler)
        with tempfile.TemporaryDirectory() as folder:
            save_and_reload(self.scheduler, folder)
