"""Differential tests: the same call sequences against luigi 3.8.1's Scheduler and ours.

Every reply must be identical once both are reduced to the JSON a worker would receive
(with luigi's arbitrary ordering of ``deps`` sets sorted away). The scenarios together call
every method in ``luigid.core.rpc.RPC_METHODS``; the last test checks that they do.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from luigid.core.rpc import RPC_METHODS

from .support import Twin

MakeTwin = Callable[..., Twin]

WORKER_INFO = [["salt", "s1"], ["workers", 1], ["host", "host-w1"], ["username", "u"], ["pid", 11]]
FAST = {"retry_delay": 100, "remove_delay": 1000, "worker_disconnect_delay": 60}


def linear_chain(make_twin: MakeTwin) -> None:
    t = make_twin(**FAST)
    t.same("add_worker", worker="w1", info=[*WORKER_INFO, ["first_task", "C_1"]])
    t.add("C_1", deps=["B_1"], priority=0, module="m", params={"n": "1"})
    t.add("B_1", deps=["A_1"], module="m", params={"n": "1"})
    t.views("C_1", "B_1", "A_1")  # A_1 is still only a placeholder here
    t.add("A_1", deps=[], module="m", params={"n": "1"})
    t.same("count_pending", worker="w1")
    t.views("C_1", "B_1", "A_1")
    for expected in ("A_1", "B_1", "C_1"):
        t.clock.advance(5)
        reply = t.work(current_tasks=[])
        assert reply["task_id"] == expected
        t.same("add_task", task_id=expected, worker="w1", status="RUNNING", tracking_url="http://t/x")
        t.same("set_task_status_message", task_id=expected, status_message="half way")
        t.same("set_task_progress_percentage", task_id=expected, progress_percentage=50)
        t.same("report_task_statistics", task_id=expected, statistics={"rows": 3})
        t.same("update_metrics_task_started", task={"id": expected})
        t.same("ping", worker="w1")
        t.views(expected)
        t.same("count_pending", worker="w1")
        t.clock.advance(5)
        t.same(
            "add_task",
            task_id=expected,
            worker="w1",
            status="DONE",
            expl="null",
            runnable=None,
            family=expected.split("_")[0],
            module="m",
            params={"n": "1"},
            new_deps=[],
        )
    t.work(current_tasks=[])
    t.views("C_1", "B_1", "A_1")
    t.same("has_task_history")
    t.same("task_search", task_str="_1")
    t.same("task_search", task_str="nothing")
    t.same("fetch_error", task_id="missing")
    t.same("get_task_status_message", task_id="missing")
    t.same("get_task_progress_percentage", task_id="missing")
    t.same("get_running_task_resources", task_id="missing")
    t.same("dep_graph", task_id="missing")
    t.same("inverse_dep_graph", task_id="missing")
    # the worker goes away: everything is forgotten after the delays
    t.clock.advance(61)
    t.same("prune")
    t.views()
    t.clock.advance(1001)
    t.same("prune")
    t.views()


def diamond_two_workers(make_twin: MakeTwin) -> None:
    t = make_twin(**FAST)
    for worker in ("w1", "w2"):
        t.same("add_worker", worker=worker, info=[["workers", 1], ["host", "host-" + worker]])
        t.add("D_x", worker, deps=["B_x", "C_x"], priority=1)
        t.add("B_x", worker, deps=["A_x"], priority=1)
        t.add("C_x", worker, deps=["A_x"], priority=5)
        t.add("A_x", worker, deps=[], priority=1)
    t.views("D_x", "A_x")
    assert t.work("w1", current_tasks=[])["task_id"] == "A_x"
    assert t.work("w2", current_tasks=[])["task_id"] is None  # A_x is taken; the rest wait
    t.same("count_pending", worker="w2")
    t.views("D_x", "A_x", "B_x")
    t.clock.advance(3)
    t.add("A_x", "w1", status="DONE", runnable=None)
    t.views("D_x")
    assert t.work("w2", current_tasks=[])["task_id"] == "C_x"  # priority 5 first
    assert t.work("w1", current_tasks=[])["task_id"] == "B_x"
    t.views("D_x", "B_x", "C_x")
    # a worker that isn't running B_x cannot finish it
    t.add("B_x", "w2", status="DONE", runnable=None)
    t.views("B_x")
    t.add("B_x", "w1", status="FAILED", runnable=None, expl='"boom"')
    t.views("D_x", "B_x")
    t.same("task_list", status="PENDING", upstream_status="UPSTREAM_FAILED")
    t.add("C_x", "w2", status="DONE", runnable=None)
    t.work("w1", current_tasks=[])
    t.clock.advance(101)
    t.same("prune")
    t.views("D_x", "B_x")
    t.work("w2", current_tasks=[])
    t.same("count_pending", worker="w1")
    t.same("count_pending", worker="w2")


def failures_and_disable(make_twin: MakeTwin) -> None:
    t = make_twin(
        retry_delay=10,
        remove_delay=1000,
        worker_disconnect_delay=600,
        retry_count=2,
        disable_window=50,
        disable_persist=300,
        disable_hard_timeout=500,
    )
    t.add("F_1", deps=[])
    t.add("G_1", deps=["F_1"])
    t.add("H_1", deps=[], retry_policy_dict={"retry_count": 1})
    for _ in range(2):
        t.clock.advance(11)
        t.same("prune")
        assert t.work(current_tasks=[])["task_id"] == "F_1"
        t.add("F_1", status="FAILED", runnable=None, expl='"err"')
        t.views("F_1", "G_1")
    t.same("re_enable_task", task_id="G_1")  # not disabled: nothing
    t.same("re_enable_task", task_id="F_1")
    t.views("F_1")
    t.same("forgive_failures", task_id="F_1")
    t.same("forgive_failures", task_id="nope")
    t.views("F_1")
    # a worker cannot lift a scheduler disable, but DONE can
    assert t.work(current_tasks=[])["task_id"] == "F_1"
    t.add("F_1", status="FAILED", runnable=None)
    t.add("F_1", status="FAILED", runnable=None)
    t.views("F_1")
    t.add("F_1", status="PENDING")
    t.views("F_1")
    t.same("mark_as_done", task_id="F_1")
    t.same("mark_as_done", task_id="nope")
    t.same("mark_as_done", task_id="G_1")  # PENDING: untouched
    t.views("F_1", "G_1")
    assert t.work(current_tasks=[])["task_id"] == "G_1"
    t.add("G_1", status="DONE", runnable=None)
    # one failure is enough for H_1 (per-task retry_count)
    assert t.work(current_tasks=[])["task_id"] == "H_1"
    t.add("H_1", status="FAILED", runnable=None, retry_policy_dict={"retry_count": 1})
    t.views("H_1")
    t.same("forgive_failures", task_id="H_1")
    # disable_persist elapses: back to FAILED, then retried
    t.clock.advance(301)
    t.same("prune")
    t.views("H_1")
    t.clock.advance(11)
    t.same("prune")
    t.views("H_1")
    # a worker may disable a task itself; then a worker may also bring it back
    t.add("G_1", status="DISABLED", runnable=None)
    t.views("G_1")
    t.same("re_enable_task", task_id="G_1")
    t.add("G_1", status="PENDING")
    t.views("G_1")


def hard_timeout(make_twin: MakeTwin) -> None:
    t = make_twin(retry_delay=1, disable_hard_timeout=100, retry_count=50, worker_disconnect_delay=600)
    t.add("K_1")
    for _ in range(4):
        t.clock.advance(40)
        t.same("prune")
        t.work(current_tasks=[])
        t.add("K_1", status="FAILED", runnable=None)
        t.views("K_1")


def batching(make_twin: MakeTwin) -> None:
    t = make_twin(resources={"db": 2}, **FAST)
    t.same("add_task_batcher", worker="w1", task_family="B", batched_args=["day"], max_batch_size=3)
    for day in ("1", "2", "3", "4"):
        t.add("B_" + day, params={"day": day, "kind": "x"}, batchable=True, resources={"db": 1})
    t.add("B_5", params={"day": "5", "kind": "y"}, batchable=True, resources={"db": 1})
    t.add("B_6", params={"day": "6", "kind": "x"}, batchable=False, resources={"db": 1})
    t.views("B_1")
    reply = t.work(current_tasks=[])
    assert reply["batch_id"] and len(reply["batch_task_ids"]) == 3
    t.views("B_1", "B_2")
    batch_task = "B_4_3_2"
    t.add(batch_task, status="RUNNING", batch_id=reply["batch_id"], params={"day": "4,3,2", "kind": "x"})
    t.views(batch_task, "B_2")
    t.same("set_task_status_message", task_id=batch_task, status_message="batching")
    t.same("set_task_progress_percentage", task_id=batch_task, progress_percentage=30)
    t.same("decrease_running_task_resources", task_id=batch_task, decrease_resources={"db": 1})
    t.same("decrease_running_task_resources", task_id="B_1", decrease_resources={"db": 1})
    t.views(batch_task, "B_2", "B_3")
    t.same("get_running_task_resources", task_id="B_2")
    t.add(batch_task, status="FAILED", expl='"batch broke"', runnable=None)
    t.views(batch_task, "B_2", "B_3", "B_4")
    # the next batch is handed out but never claimed: the next get_work returns it to PENDING
    reply = t.work(current_tasks=[])
    t.views("B_1")
    reply = t.work(current_tasks=[])
    t.views("B_1")
    reply = t.work(current_tasks=[])
    t.clock.advance(101)
    t.same("prune")
    reply = t.work(current_tasks=[])
    t.views("B_1", "B_2")
    if reply.get("batch_id"):
        t.add("B_done", status="RUNNING", batch_id=reply["batch_id"], params={"day": "x", "kind": "x"})
        t.add("B_done", status="DONE", runnable=None)
    t.views("B_1", "B_2", "B_3")


def resources_greedy(make_twin: MakeTwin) -> None:
    t = make_twin(resources={"r": 2, "s": 1}, **FAST)
    t.same("add_worker", worker="low", info=[["workers", 2]])
    t.same("add_worker", worker="high", info=[["workers", 1]])
    t.work("low", current_tasks=[])
    t.work("high", current_tasks=[])
    for i in range(4):
        t.add(f"L_{i}", "low", priority=1, resources={"r": 1})
    t.add("H_0", "high", priority=10, resources={"r": 2})
    t.add("U_0", "low", priority=0, resources={"unconfigured": 1})
    t.add("U_1", "low", priority=0, resources={"unconfigured": 1})
    t.views()
    t.work("low", current_tasks=[])  # must not take r while the high-priority task waits for both
    t.work("high", current_tasks=[])
    t.work("low", current_tasks=[])
    t.work("low", current_tasks=[])
    t.views("H_0", "U_0")
    t.same("get_running_task_resources", task_id="H_0")
    t.same("decrease_running_task_resources", task_id="H_0", decrease_resources={"r": 1, "zzz": 4})
    t.same("get_running_task_resources", task_id="H_0")
    t.work("low", current_tasks=[])
    t.views()
    t.same("update_resource", resource="r", amount=5)
    t.same("update_resource", resource="r", amount=-1)
    t.same("update_resource", resource="r", amount="many")
    t.same("update_resources", r=3, s=0, extra=7)
    t.views()
    t.work("low", current_tasks=[])
    t.work("low", current_tasks=[])
    t.views()


def assistants(make_twin: MakeTwin) -> None:
    t = make_twin(**FAST)
    t.add("P_1", "owner", deps=["P_0"])
    t.add("P_0", "owner", deps=[])
    t.add("Q_1", "owner", deps=[], runnable=False)
    t.views()
    assert t.work("helper", assistant=True, current_tasks=[])["task_id"] == "P_0"
    t.views("P_1")
    t.same("count_pending", worker="helper")
    t.add("P_0", "helper", status="DONE", runnable=None, assistant=True)
    assert t.work("helper", assistant=True, current_tasks=[])["task_id"] == "P_1"
    t.views("P_1")
    # the owner disappears; the assistant's running task survives pruning
    t.clock.advance(50)
    t.work("helper", assistant=True, current_tasks=["P_1"])
    t.clock.advance(20)
    t.same("prune")
    t.views("P_1")
    t.add("P_1", "helper", status="DONE", runnable=None, assistant=True)
    t.views("P_1")
    t.same("worker_list")


def dead_worker(make_twin: MakeTwin) -> None:
    t = make_twin(retry_delay=30, remove_delay=100, worker_disconnect_delay=10)
    t.add("R_1", "w1")
    t.add("R_2", "w2")
    t.work("w1", current_tasks=[])
    t.work("w2", current_tasks=[])
    t.views()
    t.clock.advance(5)
    t.same("ping", worker="w2")
    t.clock.advance(6)
    t.same("prune")  # w1 is gone: its running task fails
    t.views("R_1", "R_2")
    t.clock.advance(31)
    t.same("prune")
    t.views("R_1", "R_2")
    t.clock.advance(200)
    t.same("prune")
    t.views()


def messages_and_pause(make_twin: MakeTwin) -> None:
    t = make_twin(**FAST)
    t.same("add_worker", worker="w1", info=WORKER_INFO)
    t.add("M_1", accepts_messages=True)
    t.work(current_tasks=[])
    t.views("M_1")
    t.same("set_worker_processes", worker="w1", n=3)
    sent = t.same("send_scheduler_message", worker="w1", task="M_1", content="hello")
    t.same("worker_list")
    t.same("ping", worker="w1")
    t.same("ping", worker="w1")
    t.same("get_scheduler_message_response", task_id="M_1", message_id=sent["message_id"])
    t.same("add_scheduler_message_response", task_id="M_1", message_id=sent["message_id"], response="hi")
    t.same("add_scheduler_message_response", task_id="gone", message_id="x", response="hi")
    t.same("get_scheduler_message_response", task_id="M_1", message_id=sent["message_id"])
    t.same("get_scheduler_message_response", task_id="M_1", message_id=sent["message_id"])
    t.same("get_scheduler_message_response", task_id="gone", message_id="x")
    t.same("is_pause_enabled")
    t.same("is_paused")
    t.same("pause")
    t.same("is_paused")
    t.add("M_2")
    t.work(current_tasks=["M_1"])
    t.same("unpause")
    t.same("is_paused")
    t.work(current_tasks=["M_1"])
    t.same(
        "announce_scheduling_failure",
        worker="w1",
        task_name="M_3()",
        family="M",
        params={},
        expl="no",
        owners=[],
    )
    t.same("disable_worker", worker="w1")
    t.add("M_4")
    t.add("M_1", status="DONE", runnable=None)
    t.work(current_tasks=[])
    t.views("M_1", "M_2")
    t.same("count_pending", worker="w1")

    quiet = make_twin(send_messages=False, pause_enabled=False, **FAST)
    quiet.add("N_1", accepts_messages=True)
    quiet.work(current_tasks=[])
    quiet.views("N_1")
    quiet.same("send_scheduler_message", worker="w1", task="N_1", content="hello")
    quiet.same("ping", worker="w1")
    quiet.same("is_pause_enabled")
    quiet.same("pause")
    quiet.same("is_paused")


def visibilities(make_twin: MakeTwin) -> None:
    t = make_twin(**FAST)
    params = {"public": "a", "hidden": "b", "private": "c"}
    vis = {"public": 0, "hidden": 1, "private": 2}
    t.add("V_1", params=params, param_visibilities=vis, deps=["V_0"])
    t.add("V_0", params={"private": "z"}, param_visibilities={"private": 2})
    t.views("V_1", "V_0")
    t.same("task_list", status="", upstream_status="", search="V public=a")
    t.same("task_list", status="", upstream_status="", search="private")
    t.same("worker_list")


def limits(make_twin: MakeTwin) -> None:
    t = make_twin(max_shown_tasks=3, max_graph_nodes=3, **FAST)
    t.add("Z_root", deps=["Z_a", "Z_b"])
    t.add("Z_a", deps=["Z_c"])
    t.add("Z_b", deps=["Z_d"])
    t.add("Z_c", deps=[])
    t.views("Z_root", "Z_a", "Z_c")
    t.same("task_list", status="PENDING", upstream_status="", limit=False)
    t.same("task_list", status="PENDING", upstream_status="", max_shown_tasks=10)
    t.same("task_list", status="", upstream_status="", search="Z")
    t.same("task_list", status="", upstream_status="", search="root")
    t.same("task_list", status="UNKNOWN", upstream_status="")

    pruning = make_twin(prune_on_get_work=True, retry_delay=5, remove_delay=10, worker_disconnect_delay=10)
    pruning.add("Y_1", "w1")
    pruning.work("w1", current_tasks=[])
    pruning.clock.advance(11)
    pruning.work("w2", current_tasks=[])
    pruning.views("Y_1")
    pruning.clock.advance(20)
    pruning.work("w2", current_tasks=[])
    pruning.same("task_list", status="", upstream_status="", limit=False)


def cooldown(make_twin: MakeTwin) -> None:
    t = make_twin(stable_done_cooldown_secs=30, **FAST)
    t.add("S_1")
    t.work(current_tasks=[])
    t.add("S_1", status="DONE", runnable=None)
    t.add("S_1", "w2", status="PENDING")
    t.views("S_1")
    t.clock.advance(31)
    t.add("S_1", "w2", status="PENDING")
    t.views("S_1")
    t.add("S_1", "w2", status="SUSPENDED")
    t.add("S_2", "w2", status="SUSPENDED")
    t.add("S_3", "w2", status="UNKNOWN")
    t.views("S_1", "S_2")


def batch_emails(make_twin: MakeTwin) -> None:
    t = make_twin(batch_emails=True, retry_count=2, retry_delay=1, **{"remove_delay": 1000})
    t.same("add_task_batcher", worker="w1", task_family="E", batched_args=["day"])
    t.add("E_1", params={"day": "1", "kind": "k"}, owners=["a@example.com"])
    t.same(
        "announce_scheduling_failure",
        worker="w1",
        task_name="E(day=9)",
        family="E",
        params={"day": "9", "kind": "k"},
        expl="cannot schedule",
        owners=["b@example.com"],
    )
    t.same(
        "announce_scheduling_failure",
        worker="w2",
        task_name="F()",
        family="F",
        params={},
        expl="cannot",
        owners=[],
    )
    for expl in ('{"trace": "json"}', "not json"):
        t.clock.advance(2)
        t.same("prune")
        t.work(current_tasks=[])
        t.add(
            "E_1",
            status="FAILED",
            runnable=None,
            expl=expl,
            params={"day": "1", "kind": "k"},
            owners=["a@example.com"],
        )
    t.views("E_1")


def equal_rank_siblings(make_twin: MakeTwin) -> None:
    """Placeholders share their creation time: a lone worker must run them in luigi's order."""
    t = make_twin(**FAST)
    deps = [f"D_{i}" for i in range(8)]
    t.add("P_1", deps=deps)
    for dep in (*deps[4:], *reversed(deps[:4])):
        t.add(dep)
    running: list[str] = []
    for _ in range(9):
        reply = t.work(current_tasks=running)
        if reply["task_id"]:
            running.append(reply["task_id"])
        t.same("count_pending", worker="w1")
    assert len(running) == 8


def graphs_scheduled_in_turn(make_twin: MakeTwin) -> None:
    """Each worker schedules its whole graph before the next one starts, as bench/run.py's
    preload does: one worker's ready tasks all rank ahead of the next one's, and a late
    worker's get_work must reserve for and skip the earlier ones' exactly as luigi does."""
    t = make_twin(resources={"db": 2}, **FAST)
    workers = [f"w{n}" for n in range(5)]
    for n, worker in enumerate(workers):
        t.same("add_worker", worker=worker, info=[["workers", 2 if n == 1 else 1]])
        for i in range(6):
            deps = [f"T_{n}_{i - 2}"] if i >= 2 else []
            t.add(
                f"T_{n}_{i}",
                worker=worker,
                deps=deps,
                resources={"db": 1} if i % 3 == 0 else {},
                priority=i % 2,
            )
    t.add("T_0_4", worker="w3", deps=["T_0_2"], resources={}, priority=0)  # a task two workers may run
    for turn in range(8):
        for worker in reversed(workers):
            t.clock.advance(1)
            reply = t.work(worker=worker, current_tasks=[])
            task_id = reply["task_id"]
            if task_id and (turn + int(worker[1:])) % 3:  # some stay RUNNING and hold resources
                t.same(
                    "add_task",
                    task_id=task_id,
                    worker=worker,
                    status="DONE",
                    runnable=None,
                    family="T",
                    params={},
                    new_deps=[],
                )
    t.views("T_0_4", "T_4_5")


def forgotten_running_tasks(make_twin: MakeTwin) -> None:
    """A fleet's get_work: every worker runs tasks, and one that reports fewer than it runs is
    handed the best-ranked forgotten one again (two priorities, then age); count_pending lists
    every worker's running tasks, those it shares as a stakeholder too."""
    t = make_twin(**FAST)
    workers = ("w1", "w2", "w3", "w4")
    for worker in workers:
        t.same("add_worker", worker=worker, info=[*WORKER_INFO, ["first_task", None]])
        for i in range(4):
            t.add(f"R_{worker}_{i}", worker=worker, priority=i % 2)
    for worker in workers:
        for _ in range(4):
            t.work(worker=worker)  # no current_tasks: each call starts one more
    t.same("add_task", task_id="R_w1_0", worker="w2", family="R", params={})  # a second stakeholder
    for worker in workers:
        t.same("count_pending", worker=worker)
    # all four are running: a task handed out now is a forgotten one, handed out again
    assert t.work(worker="w1", current_tasks=[])["task_id"] == "R_w1_1"
    assert t.work(worker="w2", current_tasks=["R_w2_1"])["task_id"] == "R_w2_3"
    assert t.work(worker="w3", current_tasks=["R_w3_1", "R_w3_3"])["task_id"] == "R_w3_0"
    assert t.work(worker="w4", current_tasks=[f"R_w4_{i}" for i in range(4)])["task_id"] is None
    t.views("R_w1_0")


SCENARIOS = [
    linear_chain,
    diamond_two_workers,
    failures_and_disable,
    hard_timeout,
    batching,
    resources_greedy,
    assistants,
    dead_worker,
    messages_and_pause,
    visibilities,
    limits,
    cooldown,
    batch_emails,
    equal_rank_siblings,
    graphs_scheduled_in_turn,
    forgotten_running_tasks,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_same_replies_as_luigi(make_twin: MakeTwin, scenario: Callable[[MakeTwin], None]) -> None:
    scenario(make_twin)


def test_scenarios_call_every_rpc_method(make_twin: MakeTwin) -> None:
    for scenario in SCENARIOS:
        scenario(make_twin)
    called: set[str] = set()
    for twin in make_twin.created:  # type: ignore[attr-defined]
        called |= twin.called
    assert set(RPC_METHODS) - called == set()
    assert len(RPC_METHODS) == 39
