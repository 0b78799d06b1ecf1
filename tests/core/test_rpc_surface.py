"""The RPC surface: luigi 3.8.1's 39 scheduler methods, with luigi's parameters and defaults."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from luigid.config import SchedulerConfig
from luigid.core.rpc import RPC_METHODS
from luigid.scheduler import Scheduler

LUIGI_METHODS = {
    "add_task",
    "add_task_batcher",
    "add_worker",
    "announce_scheduling_failure",
    "count_pending",
    "decrease_running_task_resources",
    "dep_graph",
    "disable_worker",
    "fetch_error",
    "forgive_failures",
    "get_running_task_resources",
    "get_scheduler_message_response",
    "get_task_progress_percentage",
    "get_task_status_message",
    "get_work",
    "graph",
    "has_task_history",
    "inverse_dep_graph",
    "is_pause_enabled",
    "is_paused",
    "mark_as_done",
    "pause",
    "ping",
    "prune",
    "re_enable_task",
    "report_task_statistics",
    "resource_list",
    "send_scheduler_message",
    "add_scheduler_message_response",
    "set_task_progress_percentage",
    "set_task_status_message",
    "set_worker_processes",
    "task_list",
    "task_search",
    "unpause",
    "update_metrics_task_started",
    "update_resource",
    "update_resources",
    "worker_list",
}


def test_exactly_luigis_methods_are_registered() -> None:
    assert len(LUIGI_METHODS) == 39
    assert set(RPC_METHODS) == LUIGI_METHODS


def test_luigi_agrees_on_the_method_list() -> None:
    import luigi.scheduler

    assert set(luigi.scheduler.RPC_METHODS) == LUIGI_METHODS


@pytest.mark.parametrize("name", sorted(LUIGI_METHODS))
def test_parameters_and_defaults_match_luigi(name: str) -> None:
    import luigi.scheduler

    def shape(fn: object) -> list[tuple[str, object, object]]:
        return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]

    assert shape(getattr(Scheduler, name)) == shape(getattr(luigi.scheduler.Scheduler, name))
    assert RPC_METHODS[name].signature == inspect.signature(getattr(Scheduler, name))


def test_keyword_arguments_override_scheduler_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LUIGI_CONFIG_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    s = Scheduler(retry_delay=100, disable_window=10, resources={"r": 3})
    assert s.config.retry_delay == 100
    assert s.config.disable_window == 10
    assert s.config.remove_delay == SchedulerConfig().remove_delay
    (resource,) = s.resource_list()
    assert resource == {"name": "r", "num_total": 3, "num_used": 0, "num_consumer": 0, "running": {}}


def test_has_task_history_follows_config() -> None:
    assert Scheduler(SchedulerConfig()).has_task_history() is False
