"""make_collector: picks the collector luigi would, and refuses bad config in one line."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from luigid.config import ConfigError, SchedulerConfig
from luigid.core.model import Task
from luigid.metrics import MetricsCollector, NoMetricsCollector, make_collector
from luigid.metrics.datadog_collector import DatadogCollector
from luigid.metrics.duck_collector import DuckTypedCollector
from luigid.metrics.prometheus_collector import PrometheusCollector


def config(which: str, custom: str | None = None) -> SchedulerConfig:
    return replace(SchedulerConfig(), metrics_collector=which, metrics_custom_import=custom)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("which", ["default", "none"])
def test_default_and_none_record_nothing(which: str, make_task: Callable[..., Task]) -> None:
    collector = make_collector(config(which), {})
    assert isinstance(collector, NoMetricsCollector)
    collector.handle_task_started(make_task())
    collector.observe_rpc("add_task", 0.001, 200)
    collector.observe_prune(0.5)
    collector.observe_snapshot(0.5)
    collector.set_state_probe(lambda: {"tasks_by_status": {}, "workers_active": 0, "workers_disabled": 0})
    collector.set_history_probe(lambda: {"queue_depth": 0, "write_failures": 0})
    assert not collector.generate_latest()


def test_prometheus_and_datadog_are_built_from_their_sections() -> None:
    assert isinstance(make_collector(config("prometheus"), {}), PrometheusCollector)
    dd = make_collector(config("datadog"), {"datadog": {"statsd_host": "127.0.0.1", "statsd_port": "9"}})
    assert isinstance(dd, DatadogCollector)
    dd.close()


def test_unknown_collector_name_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        make_collector(config("statsd"), {})
    assert "[scheduler] metrics_collector" in one_line(exc)
    assert "'statsd'" in str(exc.value)


@pytest.mark.parametrize(("which", "package"), [("prometheus", "prometheus_client"), ("datadog", "datadog")])
def test_missing_package_says_what_to_install(
    which: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes any import of the package fail, as if it were not installed
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ConfigError) as exc:
        make_collector(config(which), {})
    assert "pip install" in one_line(exc)
    assert package.replace("_", "-") in str(exc.value)


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """A directory on sys.path where a test writes the module a custom import names."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))

    return write


def test_custom_subclass_of_our_interface_is_used_as_is(
    plugin_dir: Callable[[str, str], None], make_task: Callable[..., Task]
) -> None:
    plugin_dir(
        "ours_collector",
        """
        from luigid.metrics import MetricsCollector

        class Recorder(MetricsCollector):
            def __init__(self):
                self.events = []
            def handle_task_started(self, task): self.events.append(("started", task.id))
            def handle_task_failed(self, task): self.events.append(("failed", task.id))
            def handle_task_disabled(self, task, config): self.events.append(("disabled", task.id))
            def handle_task_done(self, task): self.events.append(("done", task.id))
            def handle_task_statistics(self, task, stats): self.events.append(("stats", stats))
            def generate_latest(self): return "recorded %d\\n" % len(self.events)
        """,
    )
    collector = make_collector(config("custom", "ours_collector.Recorder"), {})
    assert type(collector).__name__ == "Recorder"
    task = make_task()
    collector.handle_task_started(task)
    collector.handle_task_statistics(task, {"rows": 3})
    collector.observe_rpc("get_work", 0.01, 200)  # inherited no-op
    assert collector.events == [("started", task.id), ("stats", {"rows": 3})]  # type: ignore[attr-defined]
    assert collector.generate_latest() == "recorded 2\n"


def test_custom_luigi_style_collector_is_accepted_by_its_methods(
    plugin_dir: Callable[[str, str], None], make_task: Callable[..., Task]
) -> None:
    # written against luigi's interface: no luigid base class, no observe_* methods
    plugin_dir(
        "luigi_style",
        """
        import abc

        class LuigiLikeBase(metaclass=abc.ABCMeta):
            def handle_task_statistics(self, task, statistics):
                pass

        class Counting(LuigiLikeBase):
            def __init__(self):
                self.counts = {}
            def _bump(self, what): self.counts[what] = self.counts.get(what, 0) + 1
            def handle_task_started(self, task): self._bump("started")
            def handle_task_failed(self, task): self._bump("failed")
            def handle_task_disabled(self, task, config): self._bump("disabled:%d" % config.retry_count)
            def handle_task_done(self, task): self._bump("done")
            def generate_latest(self): return repr(sorted(self.counts.items()))
            def configure_http_handler(self, handler): handler.set_header("X-Collector", "counting")
        """,
    )
    collector = make_collector(config("custom", "luigi_style.Counting"), {})
    assert isinstance(collector, DuckTypedCollector)
    assert isinstance(collector, MetricsCollector)
    task = make_task()
    for event in (collector.handle_task_started, collector.handle_task_done, collector.handle_task_failed):
        event(task)
    collector.handle_task_disabled(task, SchedulerConfig(retry_count=3))
    collector.handle_task_statistics(task, {})
    collector.observe_rpc("add_task", 0.001, 200)
    collector.observe_prune(0.1)
    collector.set_state_probe(dict)
    assert collector.generate_latest() == repr(
        [("disabled:3", 1), ("done", 1), ("failed", 1), ("started", 1)]
    )

    class Handler:
        headers: dict = {}

        def set_header(self, name: str, value: str) -> None:
            self.headers[name] = value

    handler = Handler()
    collector.configure_http_handler(handler)
    assert handler.headers == {"X-Collector": "counting"}


def test_custom_without_import_path_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        make_collector(config("custom", None), {})
    assert "[scheduler] metrics_custom_import" in one_line(exc)


@pytest.mark.parametrize(
    ("source", "dotted", "expected"),
    [
        ("", "no_such_module_xyz.Collector", "cannot import module 'no_such_module_xyz'"),
        ("x = 1\n", "plain_mod.Collector", "has no attribute 'Collector'"),
        ("Collector = 42\n", "plain_mod.Collector", "is not a class"),
        (
            "raise RuntimeError('boom\\nsecond line')\n",
            "plain_mod.Collector",
            "RuntimeError: boom second line",
        ),
        (
            "class Collector:\n    def handle_task_started(self, task): pass\n",
            "plain_mod.Collector",
            "missing handle_task_failed, handle_task_disabled, handle_task_done)",
        ),
        (
            "from luigid.metrics import MetricsCollector\n"
            "class Collector(MetricsCollector):\n    def handle_task_started(self, task): pass\n",
            "plain_mod.Collector",
            "does not implement the metrics collector interface",
        ),
        (
            "class Collector:\n"
            "    def __init__(self): raise ValueError('needs a token')\n"
            "    def handle_task_started(self, t): pass\n    def handle_task_failed(self, t): pass\n"
            "    def handle_task_disabled(self, t, c): pass\n    def handle_task_done(self, t): pass\n",
            "plain_mod.Collector",
            "could not create plain_mod.Collector: ValueError: needs a token",
        ),
        ("", "NoDots", "expected 'package.module.ClassName'"),
    ],
)
def test_bad_custom_collectors_are_refused_in_one_line(
    plugin_dir: Callable[[str, str], None],
    source: str,
    dotted: str,
    expected: str,
    request: pytest.FixtureRequest,
) -> None:
    # a fresh module name per case: the import system caches modules by name
    module = f"plain_mod_{abs(hash(request.node.name))}"
    dotted = dotted.replace("plain_mod", module)
    expected = expected.replace("plain_mod", module)
    if source:
        plugin_dir(module, source)
    with pytest.raises(ConfigError) as exc:
        make_collector(config("custom", dotted), {})
    message = one_line(exc)
    assert message.startswith("luigid: config error in [scheduler] metrics_custom_import: ")
    assert expected in message
