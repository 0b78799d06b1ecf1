"""task_list and graph replies are joined from JSON kept on each task (``Task.encoded``):
whatever changes a field they show must drop it (``Task.set`` does, by construction), so
that the next reply shows the change.

Each scenario below reads every view (filling the caches), changes a field one way a worker,
an admin or time can, then requires the views to be byte for byte what they are with every
cache dropped, and the change to be visible. A random test does the same after each call of
long call sequences.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import luigid.core.replies
from luigid.core import replycache
from luigid.core.browse import Page, View, browse
from luigid.core.model import RetryPolicy, Task
from luigid.core.replycache import MIN_COMPACTION, ReplyCache
from luigid.core.rpc import RPC_METHODS, Fragments, dumps, members
from luigid.scheduler import Scheduler
from tests.support.portrait import portrait

from .support import STATUSES_ASKED, Clock, add, work
from .test_differential_random import CONFIG, Replayer, ops

Make = Callable[..., Scheduler]


def reply_bytes(reply: Any) -> bytes:
    """A reply as the server sends it (``RpcHandler`` joins the pieces the same way)."""
    if not isinstance(reply, Fragments):
        return dumps(reply)
    pieces = [piece if isinstance(piece, bytes) else members(piece) for piece in reply if piece]
    return b"{" + b",".join(piece for piece in pieces if piece) + b"}"


def streamed(s: Scheduler, method: str, **arguments: Any) -> Any:
    """The reply as the server gets it: pieces, for a streamed method."""
    return RPC_METHODS[method].invoke(s, arguments)


def views(s: Scheduler) -> dict[str, bytes]:
    """Every reply built from the cached JSON, for every task."""
    shown = {"graph": reply_bytes(streamed(s, "graph"))}
    for status in STATUSES_ASKED:
        shown[f"task_list {status}"] = reply_bytes(streamed(s, "task_list", status=status))
    for task_id in sorted(task.id for task in s._state.tasks()):
        shown[f"dep_graph {task_id}"] = reply_bytes(streamed(s, "dep_graph", task_id=task_id))
        shown[f"dep_graph undone {task_id}"] = reply_bytes(
            streamed(s, "dep_graph", task_id=task_id, include_done=False)
        )
        shown[f"inverse_dep_graph {task_id}"] = reply_bytes(streamed(s, "inverse_dep_graph", task_id=task_id))
    return shown


def assert_views_fresh(s: Scheduler) -> None:
    cached = views(s)
    assert all(task.encoded is not None for task in s._state.tasks())  # task_list("") lists them all
    for task in s._state.tasks():
        task.encoded = None
    fresh = views(s)
    stale = {name: (cached[name], fresh[name]) for name in fresh if cached.get(name) != fresh[name]}
    assert not stale, f"replies built from stale task JSON: {stale}"


@pytest.fixture(params=[1000, 2], ids=["one piece", "pieces of 2"])
def piece_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(luigid.core.replies, "FRAGMENT_SIZE", request.param)
    return int(request.param)


def listed(s: Scheduler, task_id: str) -> dict[str, Any]:
    """The task as task_list (over all statuses) shows it."""
    entry: dict[str, Any] = s.task_list(status="", upstream_status="")[task_id]
    return entry


def node(s: Scheduler, task_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = s.graph()[task_id]
    return entry


def run_batch(s: Scheduler) -> str:
    """Three batchable tasks handed out as a batch to w1, claimed by the runner task it adds."""
    s.add_task_batcher(worker="w1", task_family="B", batched_args=["day"], max_batch_size=3)
    for day in "123":
        add(s, "B_" + day, params={"day": day}, batchable=True, resources={"db": 2})
    reply = work(s)
    add(s, "B_all", status="RUNNING", batch_id=reply["batch_id"], params={"day": "1,2,3"})
    return "B_all"


# Each scenario: (setup, change, check). The check proves the change happened at all, so the
# freshness comparison is not passing on a no-op.
Scenario = tuple[
    Callable[[Scheduler, Clock], object], Callable[[Scheduler, Clock], object], Callable[[Scheduler], object]
]


def _setup_a(s: Scheduler, clock: Clock) -> None:
    add(s, "A_1", params={"x": "1"})


def _setup_a_running(s: Scheduler, clock: Clock) -> None:
    add(s, "A_1", params={"x": "1"}, resources={"r": 2})
    work(s)


def _setup_a_failed(s: Scheduler, clock: Clock) -> None:
    add(s, "A_1", params={"x": "1"})
    add(s, "A_1", status="FAILED")


def _setup_a_disabled(s: Scheduler, clock: Clock) -> None:
    add(s, "A_1", params={"x": "1"})
    for _ in range(3):
        add(s, "A_1", status="FAILED")
    assert listed(s, "A_1")["status"] == "DISABLED"


def _setup_a_on_b(s: Scheduler, clock: Clock) -> None:
    add(s, "B_1")
    add(s, "A_1", deps=["B_1"])


SCENARIOS: dict[str, Scenario] = {
    "a worker reports it done": (
        _setup_a,
        lambda s, c: add(s, "A_1", status="DONE"),
        lambda s: listed(s, "A_1")["status"] == "DONE",
    ),
    "get_work hands it out": (
        _setup_a,
        lambda s, c: work(s),
        lambda s: listed(s, "A_1")["worker_running"] == "w1" and listed(s, "A_1")["time_running"] is not None,
    ),
    "failures disable it": (
        _setup_a,
        lambda s, c: [add(s, "A_1", status="FAILED") for _ in range(3)],
        lambda s: listed(s, "A_1")["re_enable_able"] is True,
    ),
    "an admin re-enables it": (
        _setup_a_disabled,
        lambda s, c: s.re_enable_task(task_id="A_1"),
        lambda s: listed(s, "A_1")["status"] == "FAILED" and "re_enable_able" not in listed(s, "A_1"),
    ),
    "the disable wears off": (
        _setup_a_disabled,
        lambda s, c: c.advance(301),  # the views' own prune does the rest
        lambda s: listed(s, "A_1")["status"] == "FAILED",
    ),
    "an admin marks it done": (
        _setup_a_failed,
        lambda s, c: s.mark_as_done(task_id="A_1"),
        lambda s: listed(s, "A_1")["status"] == "DONE",
    ),
    "an admin forgives its failures": (
        _setup_a_failed,
        lambda s, c: s.forgive_failures(task_id="A_1"),
        lambda s: listed(s, "A_1")["status"] == "PENDING",
    ),
    "it is retried after retry_delay": (
        _setup_a_failed,
        lambda s, c: c.advance(101),
        lambda s: listed(s, "A_1")["status"] == "PENDING",
    ),
    "its worker dies while running it": (
        _setup_a_running,
        lambda s, c: (c.advance(11), s.ping(worker="w2")),
        lambda s: listed(s, "A_1")["status"] == "FAILED" and listed(s, "A_1")["worker_running"] is None,
    ),
    "a second worker can run it": (
        _setup_a,
        lambda s, c: add(s, "A_1", worker="w2"),
        lambda s: listed(s, "A_1")["workers"] == ["w1", "w2"],
    ),
    "one of its workers is disabled": (
        lambda s, c: (add(s, "A_1", worker="w1"), add(s, "A_1", worker="w2")),
        lambda s, c: s.disable_worker(worker="w1"),
        lambda s: listed(s, "A_1")["workers"] == ["w2"],
    ),
    "one of its workers times out": (
        lambda s, c: (add(s, "A_1", worker="w1"), add(s, "A_1", worker="w2")),
        lambda s, c: (c.advance(11), s.ping(worker="w2")),
        lambda s: listed(s, "A_1")["workers"] == ["w2"],
    ),
    "its deps are replaced": (
        lambda s, c: (add(s, "B_1"), add(s, "C_1"), add(s, "A_1", deps=["B_1"])),
        lambda s, c: add(s, "A_1", deps=["C_1"]),
        lambda s: node(s, "A_1")["deps"] == ["C_1"],
    ),
    "it gains dynamic deps": (
        _setup_a_on_b,
        lambda s, c: (add(s, "C_1"), add(s, "A_1", status="PENDING", new_deps=["C_1"], deps=None)),
        lambda s: node(s, "A_1")["deps"] == ["B_1", "C_1"],
    ),
    "a dependent raises its priority": (
        _setup_a_on_b,
        lambda s, c: add(s, "A_1", deps=["B_1"], priority=7),
        lambda s: listed(s, "B_1")["priority"] == 7,
    ),
    "its resources change": (
        _setup_a,
        lambda s, c: add(s, "A_1", resources={"r": 1}),
        lambda s: listed(s, "A_1")["resources"] == {"r": 1},
    ),
    "its running resources decrease": (
        _setup_a_running,
        lambda s, c: s.decrease_running_task_resources(task_id="A_1", decrease_resources={"r": 1}),
        lambda s: listed(s, "A_1")["resources_running"] == {"r": 1},
    ),
    "its status message is set": (
        _setup_a_running,
        lambda s, c: s.set_task_status_message(task_id="A_1", status_message="half way"),
        lambda s: listed(s, "A_1")["status_message"] == "half way",
    ),
    "its progress is set": (
        _setup_a_running,
        lambda s, c: s.set_task_progress_percentage(task_id="A_1", progress_percentage=50),
        lambda s: listed(s, "A_1")["progress_percentage"] == 50,
    ),
    "its tracking url is set": (
        _setup_a_running,
        lambda s, c: add(s, "A_1", status="RUNNING", tracking_url="http://t/1"),
        lambda s: listed(s, "A_1")["tracking_url"] == "http://t/1",
    ),
    "it says it accepts messages": (
        _setup_a_running,
        lambda s, c: add(s, "A_1", status="RUNNING", accepts_messages=True),
        lambda s: listed(s, "A_1")["accepts_messages"] is True,
    ),
    "a placeholder learns its family and params": (
        lambda s, c: add(s, "A_1", deps=["B_1"]),
        lambda s, c: add(s, "B_1", family="B", params={"day": "1"}),
        lambda s: listed(s, "B_1")["display_name"] == "B(day=1)" and listed(s, "B_1")["name"] == "B",
    ),
    "it is removed": (
        _setup_a,
        lambda s, c: (c.advance(11), s.prune(), c.advance(1001)),
        lambda s: "A_1" not in s.task_list(status="", upstream_status=""),
    ),
    "batch members get the runner's status message": (
        lambda s, c: [run_batch(s)],
        lambda s, c: s.set_task_status_message(task_id="B_all", status_message="batch at 10"),
        lambda s: listed(s, "B_2")["status_message"] == "batch at 10",
    ),
    "batch members get the runner's tracking url": (
        lambda s, c: [run_batch(s)],
        lambda s, c: add(s, "B_all", status="RUNNING", tracking_url="http://t/b", params={"day": "1,2,3"}),
        lambda s: listed(s, "B_3")["tracking_url"] == "http://t/b",
    ),
    "batch members' running resources decrease": (
        lambda s, c: [run_batch(s)],
        lambda s, c: s.decrease_running_task_resources(task_id="B_all", decrease_resources={"db": 1}),
        lambda s: listed(s, "B_1")["resources_running"] == {"db": 1},
    ),
    "batch members finish with the runner": (
        lambda s, c: [run_batch(s)],
        lambda s, c: add(s, "B_all", status="DONE", params={"day": "1,2,3"}),
        lambda s: listed(s, "B_2")["status"] == "DONE",
    ),
}


#: the resources and delays the scenarios step across
SCENARIO_CONFIG: dict[str, Any] = {
    "resources": {"r": 5, "db": 10},
    "retry_delay": 100,
    "remove_delay": 1000,
    "worker_disconnect_delay": 10,
    "retry_count": 3,
    "disable_persist": 300,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_change_shows_in_the_next_reply(
    name: str, make_scheduler: Make, clock: Clock, piece_size: int
) -> None:
    setup, change, check = SCENARIOS[name]
    s = make_scheduler(**SCENARIO_CONFIG)
    setup(s, clock)
    clock.advance(1)
    views(s)  # fill the caches
    assert all(task.encoded is not None for task in s._state.tasks())
    change(s, clock)
    clock.advance(1)
    assert_views_fresh(s)
    assert check(s), f"{name}: the change did not happen"


def test_cached_replies_match_the_uncached_ones(make_scheduler: Make, clock: Clock) -> None:
    """The same bytes as when each task is serialised afresh, placeholders and all."""
    s = make_scheduler(retry_count=1)
    add(s, "A_1", deps=["B_1", "C_1"], params={"x": 'é " \\ \u2028'}, resources={"r": 1})
    add(s, "C_1", status="FAILED")
    add(s, "D_1", status="DONE", deps=["A_1"])
    work(s, "w2")
    assert_views_fresh(s)
    assert_views_fresh(s)  # and again, with every cache filled


def test_entries_keep_the_key_order_of_serialize_task(make_scheduler: Make, clock: Clock) -> None:
    """Entries carry their keys in the order ``serialize_task`` gives them (as before the
    cache); placeholders as ``placeholder`` gives them."""
    s = make_scheduler(retry_count=1)
    add(s, "A_1", deps=["B_1", "Z_9"])
    add(s, "B_1")
    add(s, "C_1", status="FAILED")  # disabled: re_enable_able
    work(s)  # running: accepts_messages
    for _ in range(2):  # uncached, then cached
        in_order = json.loads(reply_bytes(streamed(s, "task_list", status="")), object_pairs_hook=list)
        for task_id, entry in in_order:
            task = s._state.get_task(task_id)
            assert task is not None
            expected = s.replies.serialize_task(task, include_deps=False)
            assert [key for key, _ in entry] == list(expected)
        for task_id, entry in json.loads(reply_bytes(streamed(s, "graph")), object_pairs_hook=list):
            keys = [key for key, _ in entry]
            task = s._state.get_task(task_id)
            if task is None or not task.family:
                expected = s.replies.placeholder(task_id)
            else:
                expected = s.replies.serialize_task(task, deps=[], display="display_name" in keys)
            assert keys == [key for key in expected if key != "display_name" or key in keys]
    statuses = {task_id: dict(entry)["status"] for task_id, entry in in_order}
    assert statuses == {"A_1": "PENDING", "B_1": "RUNNING", "C_1": "DISABLED", "Z_9": "UNKNOWN"}


class _Solo:
    """Stands in for the luigi twin in ``Replayer``: only our scheduler, called directly."""

    def __init__(self, clock: Clock, ours: Scheduler) -> None:
        self.clock = clock
        self.ours = ours

    def same(self, method: str, **kwargs: Any) -> Any:
        return getattr(self.ours, method)(**copy.deepcopy(kwargs))


@settings(
    max_examples=int(os.environ.get("LUIGID_DIFF_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sequence=st.lists(ops, min_size=5, max_size=40), placeholders=st.booleans())
def test_random_sequences_never_show_stale_json(
    make_scheduler: Make, clock: Clock, sequence: list[tuple[Any, ...]], placeholders: bool
) -> None:
    s = make_scheduler(resources={"r": 2}, **CONFIG)
    replayer = Replayer(_Solo(clock, s), placeholders)  # type: ignore[arg-type]  # duck-typed twin
    for op in sequence:
        replayer.run(op)
        assert_views_fresh(s)


# ------------------------------------------------ the bound ([scheduler] reply_cache_tasks)

UNBOUNDED = 10**9


@pytest.fixture
def small_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passes after a few admissions, over a few admissions each, so short call sequences
    start, interleave with and finish several."""
    monkeypatch.setattr(replycache, "MIN_COMPACTION", 4)
    monkeypatch.setattr(replycache, "COMPACT_STEP", 2)


def holding(s: Scheduler) -> list[str]:
    """The tasks holding reply JSON or a display name."""
    return [task.id for task in s._state.tasks() if task.encoded is not None or task.display is not None]


def drop_caches(s: Scheduler) -> None:
    s._state.reply_cache.clear()
    for task in s._state.tasks():
        task.encoded = task.display = None


def pages(s: Scheduler) -> dict[str, Any]:
    """The UI's task browser (which keeps display names through the same bound): ids and
    boxes of a search and of a sort by name, both ways."""
    shown: dict[str, Any] = {}
    for view in (View(search="a", sort="name"), View(sort="name", descending=False), View(search="B 2")):
        steps = browse(s._state, view)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                page: Page = done.value
                break
        shown[repr(view)] = (page.counts, page.families, page.total, [(t.id, box) for t, box in page.tasks])
    return shown


def everything(s: Scheduler) -> dict[str, Any]:
    return {**views(s), **pages(s), "search": reply_bytes(streamed(s, "task_list", status="", search="a 1"))}


def varied(s: Scheduler, clock: Clock) -> None:
    """A dozen tasks in every status a reply shows differently, placeholders and a batch included."""
    run_batch(s)
    add(s, "A_1", deps=["B_1", "Z_9"], params={"x": 'é " \\ \u2028'}, resources={"r": 1})
    add(s, "C_1", params={"day": "2"}, deps=["A_1"])
    for _ in range(3):
        add(s, "D_1", family="D", status="FAILED")  # disabled
    add(s, "E_1", family="E", status="DONE", deps=["C_1"])
    add(s, "F_1", family="F", params={"day": "1"}, deps=["E_1", "D_1"])
    add(s, "G_1", family="G", worker="w2")
    work(s, "w2")
    clock.advance(1)


@pytest.mark.parametrize("cap", [0, 1, 3])
def test_a_tiny_bound_gives_the_same_bytes_as_none(
    make_scheduler: Make, clock: Clock, piece_size: int, cap: int
) -> None:
    s = make_scheduler(resources={"r": 5, "db": 10}, retry_count=3, reply_cache_tasks=cap)
    varied(s, clock)
    bounded = [everything(s) for _ in range(3)]  # cold, then as warm as the bound lets it be
    assert len(set(holding(s))) <= cap and len(s._state.reply_cache) <= cap
    drop_caches(s)
    s._state.config = dataclasses.replace(s.config, reply_cache_tasks=UNBOUNDED)
    unbounded = everything(s)
    assert len(holding(s)) == s._state.count()  # every task cached: the comparison is with the full cache
    assert all(shown == unbounded for shown in bounded)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_change_shows_in_the_next_reply_under_a_tiny_bound(
    name: str, make_scheduler: Make, clock: Clock
) -> None:
    setup, change, check = SCENARIOS[name]
    s = make_scheduler(**SCENARIO_CONFIG, reply_cache_tasks=2)
    setup(s, clock)
    clock.advance(1)
    everything(s)  # fill the caches, as far as the bound lets them
    change(s, clock)
    clock.advance(1)
    cached = everything(s)
    assert len(holding(s)) <= 2
    drop_caches(s)
    assert cached == everything(s)
    assert check(s), f"{name}: the change did not happen"


def test_the_bound_holds_when_the_cap_shrinks(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(resources={"r": 5, "db": 10}, retry_count=3)
    varied(s, clock)
    full = everything(s)
    assert len(holding(s)) == s._state.count()
    s._state.config = dataclasses.replace(s.config, reply_cache_tasks=2)
    assert len(holding(s)) <= 2
    assert everything(s) == full
    assert len(holding(s)) <= 2


def test_a_removed_task_lets_go_of_its_json(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(remove_delay=1000, worker_disconnect_delay=10, reply_cache_tasks=5)
    add(s, "A_1", params={"x": "1"})
    everything(s)
    task = s._state.get_task("A_1")
    assert task is not None and task.encoded is not None and task.display is not None
    clock.advance(11)
    s.prune()
    clock.advance(1001)
    s.prune()
    assert not s._state.has_task("A_1")
    assert task.encoded is None and task.display is None


def test_saving_and_loading_ignore_the_bound(make_scheduler: Make, clock: Clock, tmp_path: Path) -> None:
    """A state saved from a scheduler whose caches are partly filled loads into the same
    portrait and the same replies, under another bound."""
    path = str(tmp_path / "state.pickle")
    s = make_scheduler(resources={"r": 5, "db": 10}, retry_count=3, state_path=path, reply_cache_tasks=3)
    varied(s, clock)
    shown = everything(s)
    s.dump()
    for cap in (3, UNBOUNDED):
        again = make_scheduler(
            resources={"r": 5, "db": 10}, retry_count=3, state_path=path, reply_cache_tasks=cap
        )
        again.load()
        assert not holding(again)
        assert portrait(again) == portrait(s)
        assert everything(again) == shown


@settings(
    max_examples=int(os.environ.get("LUIGID_DIFF_EXAMPLES", "150")) // 3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sequence=st.lists(ops, min_size=5, max_size=40), cap=st.sampled_from([1, 2, 3, UNBOUNDED]))
def test_random_sequences_under_a_tiny_bound(
    make_scheduler: Make, clock: Clock, small_passes: None, sequence: list[tuple[Any, ...]], cap: int
) -> None:
    """After every call: no more than ``cap`` tasks hold a cache, and the replies are what
    they are with every cache dropped (compaction passes start and end all along, under a
    bound above the task count too)."""
    s = make_scheduler(resources={"r": 2}, reply_cache_tasks=cap, **CONFIG)
    replayer = Replayer(_Solo(clock, s), placeholders=True)  # type: ignore[arg-type]  # duck-typed twin
    for op in sequence:
        replayer.run(op)
        cached = views(s)
        assert len(holding(s)) <= cap and len(s._state.reply_cache) <= cap
        drop_caches(s)
        assert views(s) == cached


def test_removed_tasks_do_not_pile_up_in_the_slots(make_scheduler: Make, clock: Clock) -> None:
    """Tasks come and go under a bound far above their number: the slots of removed tasks are
    dropped as the cache goes on, so the entries stay within twice the live ones (or
    MIN_COMPACTION) rather than growing with every task ever cached."""
    s = make_scheduler(worker_disconnect_delay=10, remove_delay=10)
    live = 1500
    for round_ in range(6):
        for n in range(live):
            add(s, f"R{round_}_{n}", worker=f"w{round_}", family="R", params={"n": str(n)})
        assert len(reply_bytes(streamed(s, "task_list", status="", upstream_status=""))) > live
        assert len(s._state.reply_cache) <= 2 * max(live, MIN_COMPACTION)
        for _ in range(2):  # the worker is gone, its tasks lose their stakeholder; then they are removed
            clock.advance(11)
            while s.prune_slice():
                pass
        assert s._state.count() == 0
    assert len(s._state.reply_cache) <= 2 * max(live, MIN_COMPACTION) < 6 * live


# ------------------------------------- the slot list's compaction, a few entries per admission


class Held(Task):
    """A task a test can hold a weak reference to (``Task`` has no ``__weakref__`` slot: it
    would cost every task a pointer)."""

    __slots__ = ("__weakref__",)


def held(task_id: str) -> Held:
    return Held(task_id, "PENDING", None, RetryPolicy(3, 3600, 3600), family="F", params={"n": task_id})


def real_entries(cache: ReplyCache) -> list[Task]:
    """The entries that keep a task's caches, a pass's gap left out."""
    slots = cache._slots
    if cache._kept is None:
        return list(slots)
    return slots[: cache._write] + slots[cache._read :]


def assert_bounded(cache: ReplyCache, everyone: list[Task]) -> None:
    holders = [task for task in everyone if task.encoded is not None or task.display is not None]
    entries = real_entries(cache)
    assert len(cache) <= cache.capacity
    assert set(holders) <= set(entries), "a task holds a cache without an entry"
    assert len(set(holders)) <= cache.capacity
    if cache._kept is not None:  # the kept part: one entry per task, the pass's set
        kept = cache._slots[: cache._write]
        assert len(kept) == len(cache._kept) and set(kept) == cache._kept
        assert cache._write <= cache._read <= len(cache)


class Churn:
    """A reply cache over a state's task dict, driven the ways the scheduler drives it: tasks
    added and removed (``State.remove_tasks`` clears a removed task's caches), replies caching
    a task's JSON or its name, and changes dropping them (``Task.set``, ``Task.set_params``)."""

    def __init__(self, capacity: int) -> None:
        self.tasks: dict[str, Task] = {}
        self.cache = ReplyCache(capacity, self.tasks)
        self.everyone: list[Task] = []  # every task ever made, removed ones included
        self.made = 0

    def add(self) -> Task:
        task = held(f"T{self.made}")
        self.made += 1
        self.tasks[task.id] = task
        self.everyone.append(task)
        return task

    def pick(self, at: int) -> Task:
        return self.everyone[at % len(self.everyone)]

    def run(self, op: str, at: int) -> None:
        if op == "add" or not self.everyone:
            self.add()
            return
        task = self.pick(at)
        if op == "remove" and self.tasks.get(task.id) is task:
            del self.tasks[task.id]
            task.encoded = task.display = None
        elif op == "keep":  # a removed task too: a reply under way may cache one
            self.cache.keep(task, ("json of", task.id))
        elif op == "name":
            assert self.cache.name(task) == task.fresh_pretty_id()
        elif op == "change":
            task.set(status_message=f"at {at}")
        elif op == "new params":
            task.set_params({"n": str(at)})


CHURN = ["add", "remove", "keep", "name", "change", "new params"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    capacity=st.sampled_from([1, 2, 3, UNBOUNDED]),
    sequence=st.lists(
        st.tuples(
            st.sampled_from(["add", "remove", "keep", "name", "change", "new params"]), st.integers(0, 50)
        ),
        min_size=1,
        max_size=150,
    ),
)
def test_churn_keeps_the_bound_and_no_admission_looks_at_more_than_a_step(
    small_passes: None, capacity: int, sequence: list[tuple[str, int]]
) -> None:
    churn = Churn(capacity)
    for op, at in sequence:
        looked_at = churn.cache.looked_at
        churn.run(op, at)
        assert churn.cache.looked_at - looked_at <= replycache.COMPACT_STEP
        assert_bounded(churn.cache, churn.everyone)


def test_passes_run_under_way_of_a_big_reply_and_each_admission_pays_a_step() -> None:
    """With the module's own constants: caching 20k tasks in a row (a first whole graph under a
    bound above the task count) runs passes over thousands of entries, none in one step."""
    churn = Churn(UNBOUNDED)
    steps = []
    for n in range(20_000):
        task = churn.add()
        looked_at = churn.cache.looked_at
        churn.cache.keep(task, ("json of", task.id))
        steps.append(churn.cache.looked_at - looked_at)
        churn.everyone[n // 2].set(status_message=f"at {n}")  # its cache dropped: a stale entry
    assert max(steps) == replycache.COMPACT_STEP  # the last step of a pass may be shorter
    assert sum(steps) > 4 * MIN_COMPACTION  # passes ran, over the list as it grew
    assert_bounded(churn.cache, churn.everyone)
    assert len(churn.cache) <= 3 * max(len(churn.tasks) // 2, MIN_COMPACTION)  # stale ones dropped


def test_removed_tasks_are_let_go_once_a_pass_goes_by() -> None:
    churn = Churn(UNBOUNDED)
    for _ in range(3000):
        churn.cache.keep(churn.add(), b"json")
    removed = [task for task in churn.everyone if int(task.id[1:]) % 3]
    for task in removed:  # as State.remove_tasks does
        del churn.tasks[task.id]
        task.encoded = task.display = None
    late = removed[0]
    churn.cache.keep(late, b"json")  # cached by a reply under way after its removal
    gone = [weakref.ref(task) for task in removed]
    churn.everyone = [task for task in churn.everyone if churn.tasks.get(task.id) is task]
    del removed, task, late
    assert all(ref() is not None for ref in gone)  # held by their slots, until a pass goes by
    while any(ref() is not None for ref in gone):
        churn.cache.keep(churn.add(), b"json")
        # the next pass starts after as many admissions as there were entries, and looks at
        # COMPACT_STEP of them with each admission after that
        assert churn.made < 3000 + 3002 + 3002, "the removed tasks are still held"
    assert_bounded(churn.cache, churn.everyone)
    assert len(churn.cache) <= 2 * max(len(churn.tasks), MIN_COMPACTION)


def test_a_shrinking_cap_during_a_pass_evicts_only_real_entries() -> None:
    churn = Churn(UNBOUNDED)
    for n in range(3 * MIN_COMPACTION):
        task = churn.add()
        churn.cache.keep(task, b"json")
        if n % 2:
            task.set(status_message="changed")  # stale entries: the pass leaves a gap
        if churn.cache._kept is not None and churn.cache._write + 100 < churn.cache._read:
            break
    assert churn.cache._kept is not None, "no pass with a gap under way"
    churn.cache.set_capacity(50)
    assert_bounded(churn.cache, churn.everyone)
    assert churn.cache._kept is None
    for _ in range(200):
        churn.cache.keep(churn.add(), b"json")
        assert_bounded(churn.cache, churn.everyone)
