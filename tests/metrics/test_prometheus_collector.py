"""The prometheus collector: luigi's metric names and labels, plus luigid's operational readings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from luigid.config import ConfigError, SchedulerConfig
from luigid.core.model import DISABLED, FAILED, Task
from luigid.metrics.prometheus_collector import MAX_RPC_METHOD_LABELS, PrometheusCollector
from tests.metrics.metrics_helpers import parse_samples, run_for, sample
from tests.support import FakeClock


def scrape(collector: PrometheusCollector) -> dict:
    return parse_samples(collector.generate_latest())


def test_task_events_use_luigis_names_with_family_label(make_task: Callable[..., Task]) -> None:
    collector = PrometheusCollector.from_sections({})
    ingest = make_task("Ingest", date="2024-01-01")
    report = make_task("Report")
    collector.handle_task_started(ingest)
    collector.handle_task_started(ingest)
    collector.handle_task_started(report)
    collector.handle_task_failed(run_for(ingest, 3.0, FAILED))
    collector.handle_task_disabled(run_for(ingest, 4.0, DISABLED), SchedulerConfig())
    collector.handle_task_done(run_for(report, 7.5))

    samples = scrape(collector)
    assert sample(samples, "luigi_task_started_total", family="Ingest") == 2
    assert sample(samples, "luigi_task_started_total", family="Report") == 1
    assert sample(samples, "luigi_task_failed_total", family="Ingest") == 1
    assert sample(samples, "luigi_task_disabled_total", family="Ingest") == 1
    assert sample(samples, "luigi_task_done_total", family="Report") == 1
    assert sample(samples, "luigi_task_done_total", family="Ingest") is None
    assert sample(samples, "luigi_task_execution_time_seconds", family="Ingest") == 4.0
    assert sample(samples, "luigi_task_execution_time_seconds", family="Report") == 7.5


def test_started_task_shows_an_execution_time_series_before_it_finishes(
    make_task: Callable[..., Task],
) -> None:
    collector = PrometheusCollector.from_sections({})
    collector.handle_task_started(make_task("Slow"))
    assert sample(scrape(collector), "luigi_task_execution_time_seconds", family="Slow") == 0


def test_task_found_already_done_counts_but_has_no_run_time(make_task: Callable[..., Task]) -> None:
    collector = PrometheusCollector.from_sections({})
    task = make_task("Cached")
    task.time_running = None
    collector.handle_task_done(task)
    # a failure of a task that never started running must not break anything either
    collector.handle_task_failed(make_task("NeverRan"))
    samples = scrape(collector)
    assert sample(samples, "luigi_task_done_total", family="Cached") == 1
    assert sample(samples, "luigi_task_execution_time_seconds", family="Cached") is None
    assert sample(samples, "luigi_task_failed_total", family="NeverRan") == 1


def test_task_parameters_become_labels_before_family(make_task: Callable[..., Task]) -> None:
    collector = PrometheusCollector.from_sections(
        {"prometheus": {"task_parameters_to_use_in_labels": '["region", "missing"]'}}
    )
    assert collector.labels == ["region", "missing", "family"]
    collector.handle_task_started(make_task("Load", region="eu", other="x"))
    samples = scrape(collector)
    # a parameter the task lacks is rendered the way luigi's collector renders it
    assert sample(samples, "luigi_task_started_total", region="eu", missing="None", family="Load") == 1


def test_repeated_label_names_are_kept_once(make_task: Callable[..., Task]) -> None:
    collector = PrometheusCollector.from_sections(
        {"prometheus": {"task_parameters_to_use_in_labels": '["region", "family", "region"]'}}
    )
    assert collector.labels == ["region", "family"]
    task = make_task("Load", region="eu")
    task.set_params({"region": "eu", "family": "ignored"})
    collector.handle_task_started(task)
    assert sample(scrape(collector), "luigi_task_started_total", region="eu", family="Load") == 1


def test_family_label_can_be_left_out(make_task: Callable[..., Task]) -> None:
    collector = PrometheusCollector.from_sections(
        {
            "prometheus": {
                "use_task_family_in_labels": "False",
                "task_parameters_to_use_in_labels": '["region"]',
            }
        }
    )
    collector.handle_task_started(make_task("Load", region="us"))
    collector.handle_task_started(make_task("Other", region="us"))
    assert sample(scrape(collector), "luigi_task_started_total", region="us") == 2


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"use_task_family_in_labels": "false"}, "task metrics need a label"),
        ({"use_task_family_in_labels": "maybe"}, "[prometheus] use_task_family_in_labels"),
        ({"task_parameters_to_use_in_labels": "region"}, "[prometheus] task_parameters_to_use_in_labels"),
        (
            {"task_parameters_to_use_in_labels": '["__reserved"]'},
            "[prometheus] task_parameters_to_use_in_labels",
        ),
    ],
)
def test_bad_prometheus_section_is_one_line(options: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        PrometheusCollector.from_sections({"prometheus": options})
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_each_collector_has_its_own_registry(make_task: Callable[..., Task]) -> None:
    first = PrometheusCollector.from_sections({})
    second = PrometheusCollector.from_sections({})
    first.handle_task_started(make_task("A"))
    assert sample(scrape(first), "luigi_task_started_total", family="A") == 1
    assert sample(scrape(second), "luigi_task_started_total", family="A") is None


def test_state_and_history_probes_are_read_at_scrape_time() -> None:
    collector = PrometheusCollector.from_sections({})
    state = {"tasks_by_status": {"PENDING": 3, "DONE": 10}, "workers_active": 2, "workers_disabled": 1}
    history = {"queue_depth": 5, "write_failures": 0}
    collector.set_state_probe(lambda: state)
    collector.set_history_probe(lambda: history)
    samples = scrape(collector)
    assert sample(samples, "luigid_tasks", status="PENDING") == 3
    assert sample(samples, "luigid_tasks", status="DONE") == 10
    assert sample(samples, "luigid_workers", state="active") == 2
    assert sample(samples, "luigid_workers", state="disabled") == 1
    assert sample(samples, "luigid_history_queue_depth") == 5
    assert sample(samples, "luigid_history_write_failures_total") == 0

    state["tasks_by_status"] = {"PENDING": 0, "DONE": 13}
    history.update(queue_depth=0, write_failures=4)
    samples = scrape(collector)
    assert sample(samples, "luigid_tasks", status="DONE") == 13
    assert sample(samples, "luigid_history_write_failures_total") == 4


def test_stall_probe_is_read_at_scrape_time() -> None:
    collector = PrometheusCollector.from_sections({})
    reading = {
        "longest_seconds": 0.12,
        "longest_on_cpu_seconds": 0.1,
        "recent_longest_seconds": 0.03,
        "over_threshold": 2,
    }
    collector.set_stall_probe(lambda: reading)
    samples = scrape(collector)
    assert sample(samples, "luigid_event_loop_longest_stall_seconds") == 0.12
    assert sample(samples, "luigid_event_loop_longest_stall_on_cpu_seconds") == 0.1
    assert sample(samples, "luigid_event_loop_recent_longest_stall_seconds") == 0.03
    assert sample(samples, "luigid_event_loop_long_stalls_total") == 2
    reading["over_threshold"] = 3
    assert sample(scrape(collector), "luigid_event_loop_long_stalls_total") == 3


def test_failing_probe_costs_only_its_own_metrics(caplog: pytest.LogCaptureFixture) -> None:
    collector = PrometheusCollector.from_sections({})

    def broken() -> dict[str, Any]:
        raise RuntimeError("state is busy")

    collector.set_state_probe(broken)
    collector.set_history_probe(lambda: {"queue_depth": 1, "write_failures": 0})
    samples = scrape(collector)
    assert not any(name == "luigid_tasks" for name, _ in samples)
    assert sample(samples, "luigid_history_queue_depth") == 1
    assert "state probe failed" in caplog.text


def test_rpc_requests_are_counted_and_timed_by_method() -> None:
    collector = PrometheusCollector.from_sections({})
    collector.observe_rpc("get_work", 0.0002, 200)
    collector.observe_rpc("get_work", 0.003, 200)
    collector.observe_rpc("add_task", 2.0, 200)
    collector.observe_rpc("add_task", 0.001, 400)
    samples = scrape(collector)
    assert sample(samples, "luigid_rpc_requests_total", method="get_work", code="200") == 2
    assert sample(samples, "luigid_rpc_requests_total", method="add_task", code="400") == 1
    assert sample(samples, "luigid_rpc_request_duration_seconds_count", method="get_work") == 2
    assert sample(samples, "luigid_rpc_request_duration_seconds_bucket", method="get_work", le="0.0005") == 1
    assert sample(samples, "luigid_rpc_request_duration_seconds_bucket", method="add_task", le="1.0") == 1
    assert sample(samples, "luigid_rpc_request_duration_seconds_sum", method="add_task") == pytest.approx(
        2.001
    )


def test_rpc_method_labels_are_bounded() -> None:
    collector = PrometheusCollector.from_sections({})
    for i in range(MAX_RPC_METHOD_LABELS + 25):
        collector.observe_rpc(f"bogus_{i}", 0.001, 404)
    collector.observe_rpc("bogus_0", 0.001, 404)  # already known: keeps its own label
    samples = scrape(collector)
    methods = {dict(labels)["method"] for name, labels in samples if name == "luigid_rpc_requests_total"}
    assert len(methods) == MAX_RPC_METHOD_LABELS + 1
    assert sample(samples, "luigid_rpc_requests_total", method="other", code="404") == 25
    assert sample(samples, "luigid_rpc_requests_total", method="bogus_0", code="404") == 2


def test_prune_and_snapshot_durations_and_ages(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = PrometheusCollector.from_sections({})
    samples = scrape(collector)
    assert sample(samples, "luigid_last_prune_duration_seconds") is None  # nothing happened yet

    clock = FakeClock(5000.0).install(monkeypatch)
    collector.observe_prune(0.25)
    clock.now += 30
    collector.observe_snapshot(1.5)
    clock.now += 12
    samples = scrape(collector)
    assert sample(samples, "luigid_last_prune_duration_seconds") == 0.25
    assert sample(samples, "luigid_last_prune_age_seconds") == 42
    assert sample(samples, "luigid_last_snapshot_duration_seconds") == 1.5
    assert sample(samples, "luigid_last_snapshot_age_seconds") == 12


def test_exposition_is_the_prometheus_text_format(make_task: Callable[..., Task]) -> None:
    collector = PrometheusCollector.from_sections({})
    collector.handle_task_started(make_task("A"))
    body = collector.generate_latest().decode()
    assert "# TYPE luigi_task_started_total counter" in body
    assert 'luigi_task_started_total{family="A"} 1.0' in body

    class Handler:
        headers: dict = {}

        def set_header(self, name: str, value: str) -> None:
            self.headers[name] = value

    handler = Handler()
    collector.configure_http_handler(handler)
    assert handler.headers["Content-Type"].startswith("text/plain; version=")
