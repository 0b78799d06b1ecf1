"""The datadog collector, against a real UDP socket standing in for the Datadog agent."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator

import pytest

from luigid.config import ConfigError, SchedulerConfig
from luigid.core.model import DISABLED, FAILED, Task
from luigid.metrics.datadog_collector import DatadogCollector
from tests.metrics.metrics_helpers import run_for


class FakeAgent:
    """A UDP socket on loopback that collects the DogStatsD datagrams sent to it."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]

    @classmethod
    def on_port(cls, port: int) -> FakeAgent:
        return cls(port)

    def receive(self, count: int) -> list[str]:
        packets: list[str] = []
        while len(packets) < count:
            data = self.sock.recv(65535).decode()
            packets.extend(line for line in data.split("\n") if line)
        return packets


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    agent = FakeAgent()
    yield agent
    agent.sock.close()


def collector_for(agent: FakeAgent, **options: str) -> DatadogCollector:
    section = {"statsd_host": "127.0.0.1", "statsd_port": str(agent.port), **options}
    return DatadogCollector.from_sections({"datadog": section})


def split_datagram(packet: str) -> tuple[str, list[str]]:
    """('metric:value|type' or the event head, its tags)."""
    head, _, tags = packet.partition("|#")
    return head, tags.split(",") if tags else []


def test_started_sends_counter_and_event_with_luigis_tags(
    agent: FakeAgent, make_task: Callable[..., Task]
) -> None:
    collector = collector_for(agent)
    collector.handle_task_started(make_task("Ingest", date="2024-01-01"))
    counter, event = agent.receive(2)
    collector.close()

    head, tags = split_datagram(counter)
    assert head == "luigi.task.started:1|c"
    assert tags == ["task_name:Ingest", "date:2024-01-01", "environment:development", "application:luigi"]

    head, tags = split_datagram(event)
    assert head.startswith("_e{")
    assert "Luigi: A task has been started!|A task has been started in the pipeline named: Ingest" in head
    assert "|p:low" in head and "|t:info" in head
    assert "task_state:STARTED" in tags and "task_name:Ingest" in tags and "environment:development" in tags


def test_failed_and_disabled_are_errors(agent: FakeAgent, make_task: Callable[..., Task]) -> None:
    collector = collector_for(agent)
    task = make_task("Load")
    collector.handle_task_failed(run_for(task, 2, FAILED))
    collector.handle_task_disabled(
        run_for(task, 2, DISABLED), SchedulerConfig(retry_count=3, disable_window=60, disable_persist=600)
    )
    failed_counter, failed_event, disabled_counter, disabled_event = agent.receive(4)
    collector.close()

    assert split_datagram(failed_counter)[0] == "luigi.task.failed:1|c"
    assert "Luigi: A task has failed!" in failed_event and "|t:error" in failed_event
    assert "task_state:FAILED" in split_datagram(failed_event)[1]
    assert split_datagram(disabled_counter)[0] == "luigi.task.disabled:1|c"
    assert (
        "A task has been disabled in the pipeline named: Load. The task has failed 3 times in the last 60 "
        "seconds, so it is being disabled for 600 seconds." in disabled_event
    )
    assert "|p:normal" in disabled_event


def test_done_sends_execution_time_and_namespaced_metrics(
    agent: FakeAgent, make_task: Callable[..., Task]
) -> None:
    collector = collector_for(
        agent, metric_namespace="etl", environment="production", default_tags="team:data,tier:1"
    )
    collector.handle_task_done(run_for(make_task("Report"), 7.5))
    packets = agent.receive(3)
    collector.close()

    heads = {split_datagram(p)[0] for p in packets}
    assert "etl.task.execution_time:7.5|g" in heads
    assert "etl.task.done:1|c" in heads
    for packet in packets:
        tags = split_datagram(packet)[1]
        assert tags[-3:] == ["environment:production", "team:data", "tier:1"]


def test_done_without_a_run_sends_nothing(agent: FakeAgent, make_task: Callable[..., Task]) -> None:
    collector = collector_for(agent)
    cached = make_task("Cached")
    cached.time_running = None
    collector.handle_task_done(cached)
    collector.handle_task_started(make_task("Marker"))  # the next datagram proves nothing came before
    first = agent.receive(1)[0]
    collector.close()
    assert split_datagram(first)[0] == "luigi.task.started:1|c"


def test_absent_agent_neither_raises_nor_loses_later_events(
    make_task: Callable[..., Task], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("datadog.dogstatsd"), "filters", [])  # a fresh throttle
    # bind then close: a port nobody listens on, until the "agent" comes back on it below
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    collector = DatadogCollector.from_sections(
        {"datadog": {"statsd_host": "127.0.0.1", "statsd_port": str(port)}}
    )
    for _ in range(20):
        collector.handle_task_started(make_task("Lost"))
    collector.handle_task_done(run_for(make_task("Lost"), 1))

    agent = FakeAgent.on_port(port)
    try:
        # the first datagram after the agent returns may still meet the old refusal; later ones arrive
        seen: list[str] = []
        while not any(p.startswith("luigi.task.started:1|c|#task_name:Seen") for p in seen):
            collector.handle_task_started(make_task("Seen"))
            seen.extend(agent.receive(1))
    finally:
        agent.sock.close()
        collector.close()
    assert all("Lost" not in packet for packet in seen)
    # dozens of dropped datagrams, one warning about them
    assert sum("Error submitting packet" in r.getMessage() for r in caplog.records) == 1


def test_extras_are_accepted_and_nothing_is_exposed(agent: FakeAgent) -> None:
    collector = collector_for(agent)
    collector.observe_rpc("get_work", 0.01, 200)
    collector.observe_prune(0.1)
    collector.set_state_probe(dict)
    assert not collector.generate_latest()
    collector.close()


def test_bad_port_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        DatadogCollector.from_sections({"datadog": {"statsd_port": "eighty"}})
    assert (
        str(exc.value) == "luigid: config error in [datadog] statsd_port: expected an integer, got 'eighty'"
    )
