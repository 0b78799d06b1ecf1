"""Configuration: luigi's files, order, syntax rules, typed sections and one-line errors."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from luigid.config import (
    ConfigError,
    CorsConfig,
    LuigidConfig,
    SchedulerConfig,
    get_bool,
    get_choice,
    get_float,
    get_int,
    get_list,
    get_str,
    load_config,
    scheduler_config_from,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(system dir standing in for /etc/luigi, working dir)"""
    system, work = tmp_path / "etc-luigi", tmp_path / "work"
    system.mkdir()
    work.mkdir()
    return system, work


def load(
    dirs: tuple[Path, Path], env: dict[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> LuigidConfig:
    system, work = dirs
    return load_config(overrides, env=env or {}, cwd=str(work), system_dir=str(system))


def error_of(
    dirs: tuple[Path, Path], env: dict[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> str:
    with pytest.raises(ConfigError) as info:
        load(dirs, env, overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("luigid: config error in ")
    return message


# --- files and precedence ----------------------------------------------------------------


def test_no_files_gives_luigi_defaults(dirs: tuple[Path, Path]) -> None:
    config = load(dirs)
    assert config.scheduler == SchedulerConfig()
    assert config.cors == CorsConfig()
    assert config.resources == {}
    assert config.sections == {}
    assert config.files == ()


def test_files_are_read_in_luigi_order_and_later_files_win(dirs: tuple[Path, Path]) -> None:
    system, work = dirs
    explicit = write(work / "conf" / "mine.cfg", "[scheduler]\nretry_count = 5\n")
    paths = [
        write(system / "client.cfg", "[scheduler]\nretry_count = 1\nremove_delay = 11\n"),
        write(system / "luigi.cfg", "[scheduler]\nretry_count = 2\nworker_disconnect_delay = 12\n"),
        write(work / "client.cfg", "[scheduler]\nretry_count = 3\ndisable_window = 13\n"),
        write(work / "luigi.cfg", "[scheduler]\nretry_count = 4\ndisable_persist = 14\n"),
        explicit,
    ]
    config = load(dirs, {"LUIGI_CONFIG_PATH": "conf/mine.cfg"})
    assert config.files == tuple(str(p) for p in paths)
    s = config.scheduler
    assert (s.retry_count, s.remove_delay, s.worker_disconnect_delay) == (5, 11.0, 12.0)
    assert (s.disable_window, s.disable_persist) == (13, 14)


def test_each_later_file_overrides_the_one_before(dirs: tuple[Path, Path]) -> None:
    system, work = dirs
    write(system / "client.cfg", "[scheduler]\nretry_count = 1\n")
    assert load(dirs).scheduler.retry_count == 1
    write(system / "luigi.cfg", "[scheduler]\nretry_count = 2\n")
    assert load(dirs).scheduler.retry_count == 2
    write(work / "client.cfg", "[scheduler]\nretry_count = 3\n")
    assert load(dirs).scheduler.retry_count == 3
    write(work / "luigi.cfg", "[scheduler]\nretry_count = 4\n")
    assert load(dirs).scheduler.retry_count == 4


def test_working_directory_defaults_to_the_process_cwd(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nstate_path = /srv/state.pickle\n")
    monkeypatch.chdir(work)
    config = load_config(env={})
    assert config.scheduler.state_path == "/srv/state.pickle"
    assert config.files == (str(work / "luigi.cfg"),)


def test_explicit_config_path_may_repeat_a_default_file_and_wins_again(dirs: tuple[Path, Path]) -> None:
    system, work = dirs
    write(system / "luigi.cfg", "[scheduler]\nretry_count = 1\n")
    write(work / "luigi.cfg", "[scheduler]\nretry_count = 2\n")
    config = load(dirs, {"LUIGI_CONFIG_PATH": str(system / "luigi.cfg")})
    assert config.scheduler.retry_count == 1


def test_missing_config_path_file_is_an_error_naming_it(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    message = error_of(dirs, {"LUIGI_CONFIG_PATH": "nope/luigi.toml"})
    assert str(work / "nope" / "luigi.toml") in message
    assert "LUIGI_CONFIG_PATH" in message
    assert "does not exist" in message


def test_config_path_naming_a_directory_is_an_error(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    (work / "conf.d").mkdir()
    message = error_of(dirs, {"LUIGI_CONFIG_PATH": "conf.d"})
    assert str(work / "conf.d") in message and "is not a file" in message


def test_unknown_parser_name_is_an_error(dirs: tuple[Path, Path]) -> None:
    message = error_of(dirs, {"LUIGI_CONFIG_PARSER": "yaml"})
    assert "LUIGI_CONFIG_PARSER" in message and "'yaml'" in message


def test_client_cfg_is_read_but_reported_as_deprecated(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "client.cfg", "[scheduler]\nretry_count = 3\n")
    config = load(dirs)
    assert config.scheduler.retry_count == 3
    assert any("client.cfg" in note and "deprecated" in note for note in config.warnings)


# --- cfg syntax rules ----------------------------------------------------------------------


def test_dashed_keys_work_and_the_underscore_spelling_wins(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(
        work / "luigi.cfg",
        """
        [scheduler]
        retry-delay = 100
        remove-delay = 5
        remove_delay = 6
        """,
    )
    config = load(dirs)
    assert config.scheduler.retry_delay == 100.0
    assert config.scheduler.remove_delay == 6.0
    assert any("retry-delay" in note and "retry_delay" in note for note in config.warnings)


def test_keys_keep_their_case(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[resources]\nGPU = 2\ngpu = 1\n")
    assert load(dirs).resources == {"GPU": 2, "gpu": 1}


def test_env_interpolation_uses_the_given_environment(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nstate_path = ${STATE_DIR}/state-${NAME}.pickle\n")
    config = load(dirs, {"STATE_DIR": "/data", "NAME": "prod"})
    assert config.scheduler.state_path == "/data/state-prod.pickle"
    assert config.sections["scheduler"]["state_path"] == "/data/state-prod.pickle"


def test_missing_env_var_is_an_error_naming_file_section_key_and_variable(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[scheduler]\nstate_path = ${STATE_DIR}/state.pickle\n")
    message = error_of(dirs)
    assert f"in {cfg} [scheduler] state_path:" in message
    assert "STATE_DIR" in message


def test_missing_env_var_in_a_section_luigid_does_not_read_is_only_raised_when_asked(
    dirs: tuple[Path, Path],
) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[worker_only]\npassword = ${SECRET}\n")
    config = load(dirs)
    with pytest.raises(ConfigError) as info:
        get_str(config.sections, "worker_only", "password", None)
    assert f"in {cfg} [worker_only] password:" in str(info.value)
    assert "SECRET" in str(info.value)


def test_percent_interpolation_within_section_default_and_across_files(dirs: tuple[Path, Path]) -> None:
    system, work = dirs
    write(system / "luigi.cfg", "[DEFAULT]\nbase = /srv/luigi\n")
    write(
        work / "luigi.cfg",
        """
        [scheduler]
        dir = %(base)s/sched
        state_path = %(dir)s/state.pickle
        [email]
        prefix = 100%% [luigi]
        """,
    )
    config = load(dirs)
    assert config.scheduler.state_path == "/srv/luigi/sched/state.pickle"
    assert get_str(config.sections, "email", "prefix", "") == "100% [luigi]"


def test_percent_then_env_interpolation(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nroot = ${HOME_DIR}\nstate_path = %(root)s/s.pickle\n")
    assert load(dirs, {"HOME_DIR": "/home/x"}).scheduler.state_path == "/home/x/s.pickle"


def test_bad_percent_syntax_is_an_error(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[scheduler]\nstate_path = /tmp/50%/state\n")
    message = error_of(dirs)
    assert f"in {cfg} [scheduler] state_path:" in message and "%%" in message


def test_reference_to_missing_key_is_an_error(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[scheduler]\nstate_path = %(nowhere)s/state\n")
    message = error_of(dirs)
    assert f"in {cfg} [scheduler] state_path:" in message and "nowhere" in message


def test_default_section_values_are_inherited_but_are_not_resources(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(
        work / "luigi.cfg",
        """
        [DEFAULT]
        owner = ops
        [resources]
        db = 3
        [email]
        """,
    )
    config = load(dirs)
    assert config.resources == {"db": 3}
    assert get_str(config.sections, "email", "owner", None) == "ops"
    # a section that is not in any file does not inherit, as in configparser
    assert get_str(config.sections, "smtp", "owner", None) is None


def test_error_for_an_inherited_value_names_where_it_is_written(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[DEFAULT]\nretry_delay = later\n[scheduler]\n")
    message = error_of(dirs)
    assert f"in {cfg} [DEFAULT] retry_delay:" in message


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("[scheduler]\nretry_count = 1\nretry_count = 2\n", "[scheduler] retry_count line 3", "twice"),
        ("[scheduler]\n[scheduler]\n", "[scheduler] line 2", "twice"),
        ("retry_count = 1\n", "line 1", "not inside a [section]"),
        ("[scheduler]\nthis line has no equals sign\n", "line 2", "cannot parse"),
    ],
)
def test_unparsable_cfg_file_is_an_error_naming_file_and_line(
    dirs: tuple[Path, Path], text: str, where: str, problem: str
) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", text)
    message = error_of(dirs)
    assert f"in {cfg} {where}" in message and problem in message


# --- TOML ----------------------------------------------------------------------------------


def test_toml_parser_reads_the_toml_files_not_the_cfg_ones(dirs: tuple[Path, Path]) -> None:
    system, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nretry_count = 9\n")
    write(system / "luigi.toml", "[scheduler]\nretry_count = 1\nremove_delay = 7\n")
    write(work / "luigi.toml", "[scheduler]\nretry_count = 2\n")
    config = load(dirs, {"LUIGI_CONFIG_PARSER": "toml"})
    assert config.files == (str(system / "luigi.toml"), str(work / "luigi.toml"))
    assert (config.scheduler.retry_count, config.scheduler.remove_delay) == (2, 7.0)


def test_toml_values_keep_their_types_and_are_not_interpolated(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(
        work / "luigi.toml",
        """
        [scheduler]
        record_task_history = true
        retry_delay = 30
        state_path = "${NOT_EXPANDED}/s.pickle"
        [resources]
        cpu = 4
        [cors]
        enabled = true
        allowed_origins = ["https://a.example", "*", "null"]
        [other]
        nested = {a = 1}
        """,
    )
    config = load(dirs, {"LUIGI_CONFIG_PARSER": "toml"})
    assert config.scheduler.record_task_history is True
    assert config.scheduler.retry_delay == 30.0
    assert config.scheduler.state_path == "${NOT_EXPANDED}/s.pickle"
    assert config.resources == {"cpu": 4}
    assert config.cors.allowed_origins == ("https://a.example",)
    assert config.sections["scheduler"]["retry_delay"] == 30
    assert config.sections["other"]["nested"] == {"a": 1}


def test_toml_config_path_is_read_by_extension_on_top_of_cfg_files(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nretry_count = 3\nremove_delay = 8\n")
    toml = write(work / "over.toml", "[scheduler]\nretry_count = 4\n")
    config = load(dirs, {"LUIGI_CONFIG_PATH": str(toml)})
    assert (config.scheduler.retry_count, config.scheduler.remove_delay) == (4, 8.0)


def test_cfg_config_path_on_top_of_toml_files(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.toml", "[scheduler]\nretry_count = 3\n")
    write(work / "extra.ini", "[scheduler]\nretry_count = 4\n")
    config = load(dirs, {"LUIGI_CONFIG_PARSER": "toml", "LUIGI_CONFIG_PATH": "extra.ini"})
    assert config.scheduler.retry_count == 4


def test_bad_toml_value_error_names_the_toml_file(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    toml = write(work / "luigi.toml", '[scheduler]\nretry_delay = "soon"\n')
    message = error_of(dirs, {"LUIGI_CONFIG_PARSER": "toml"})
    assert message == f"luigid: config error in {toml} [scheduler] retry_delay: expected a number, got 'soon'"


@pytest.mark.parametrize(
    ("text", "problem"),
    [("[scheduler\n", "not valid TOML"), ("retry_count = 1\n", "must be inside a [section]")],
)
def test_unparsable_toml_is_an_error_naming_the_file(
    dirs: tuple[Path, Path], text: str, problem: str
) -> None:
    _, work = dirs
    toml = write(work / "luigi.toml", text)
    message = error_of(dirs, {"LUIGI_CONFIG_PATH": str(toml)})
    assert f"in {toml}" in message and problem in message


# --- [scheduler] values --------------------------------------------------------------------


def test_every_scheduler_key_is_read_with_its_type(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(
        work / "luigi.cfg",
        """
        [scheduler]
        retry_delay = 1.5
        remove_delay = 2
        worker_disconnect_delay = 3
        state_path = /s
        batch_emails = TRUE
        disable_window = 4
        retry_count = 5
        disable_hard_timeout = 6
        disable_persist = 7
        max_shown_tasks = 8
        max_graph_nodes = 9
        record_task_history = true
        prune_on_get_work = True
        pause_enabled = false
        send_messages = False
        metrics_collector = custom
        metrics_custom_import = my.metrics.Collector
        stable_done_cooldown_secs = 10
        state_snapshot_interval = 0.5
        """,
    )
    assert load(dirs).scheduler == SchedulerConfig(
        retry_delay=1.5,
        remove_delay=2.0,
        worker_disconnect_delay=3.0,
        state_path="/s",
        batch_emails=True,
        disable_window=4,
        retry_count=5,
        disable_hard_timeout=6,
        disable_persist=7,
        max_shown_tasks=8,
        max_graph_nodes=9,
        record_task_history=True,
        prune_on_get_work=True,
        pause_enabled=False,
        send_messages=False,
        metrics_collector="custom",
        metrics_custom_import="my.metrics.Collector",
        stable_done_cooldown_secs=10,
        state_snapshot_interval=0.5,
    )


def test_text_where_a_number_is_due(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[scheduler]\nretry_delay = soon\n")
    message = error_of(dirs)
    assert message == f"luigid: config error in {cfg} [scheduler] retry_delay: expected a number, got 'soon'"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("disable_window = 1.5", "expected an integer, got '1.5'"),
        ("pause_enabled = yes", "expected true or false, got 'yes'"),
        ("metrics_collector = statsd", "expected one of default, none, prometheus, datadog, custom"),
        ("state_snapshot_interval = -1", "expected a number of 0 or more"),
        ("reply_cache_tasks = -1", "expected an integer of 0 or more, got '-1'"),
        ("reply_cache_tasks = many", "expected an integer, got 'many'"),
        ("retry_delay = nan", "expected a number"),
    ],
)
def test_bad_scheduler_values(dirs: tuple[Path, Path], line: str, problem: str) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", f"[scheduler]\n{line}\n")
    message = error_of(dirs)
    key = line.split(" =")[0]
    assert f"in {cfg} [scheduler] {key}: {problem}" in message


def test_custom_metrics_collector_needs_an_import(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[scheduler]\nmetrics_collector = custom\nmetrics_custom_import =\n")
    message = error_of(dirs)
    assert f"in {cfg} [scheduler] metrics_collector:" in message
    assert "metrics_custom_import" in message


def test_unknown_scheduler_key_is_ignored_with_a_warning(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nretry_dleay = 5\n")
    config = load(dirs)
    assert config.scheduler == SchedulerConfig()
    assert any("retry_dleay" in note and "unknown" in note for note in config.warnings)


# --- overrides and Scheduler(**kwargs) -----------------------------------------------------


def test_command_line_overrides_beat_files_and_none_means_not_given(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nstate_path = /from/file\nretry_count = 3\n")
    config = load(dirs, overrides={"state_path": "/from/cli", "retry_count": None})
    assert config.scheduler.state_path == "/from/cli"
    assert config.scheduler.retry_count == 3
    assert config.sections["scheduler"]["state_path"] == "/from/file"


def test_bad_command_line_override_names_its_source(dirs: tuple[Path, Path]) -> None:
    message = error_of(dirs, overrides={"retry-delay": "soon"})
    expected = "luigid: config error in command line [scheduler] retry_delay: expected a number, got 'soon'"
    assert message == expected
    assert "unknown key" in error_of(dirs, overrides={"state_dir": "/x"})


def test_scheduler_kwargs_override_file_values_without_touching_the_sections(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nretry_delay = 5\nretry_count = 2\n")
    config = load(dirs)
    scheduler = scheduler_config_from(config.sections, {"retry_delay": 100, "record_task_history": True})
    assert scheduler.retry_delay == 100.0
    assert scheduler.retry_count == 2
    assert scheduler.record_task_history is True
    assert config.sections["scheduler"] == {"retry_delay": "5", "retry_count": "2"}
    assert config.scheduler.retry_delay == 5.0


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"retry_delay": "soon"}, "retry_delay: expected a number, got 'soon'"),
        ({"retry_count": True}, "retry_count: expected an integer, got True"),
        ({"pause_enabled": 1}, "pause_enabled: expected true or false, got 1"),
        ({"metrics_collector": "statsd"}, "metrics_collector: expected one of"),
        ({"metrics_collector": "custom"}, "metrics_collector: custom needs"),
        ({"no_such_key": 1}, "no_such_key: unknown key"),
    ],
)
def test_scheduler_kwargs_are_validated(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        scheduler_config_from({}, kwargs)
    assert str(info.value).startswith("luigid: config error in keyword argument [scheduler] ")
    assert problem in str(info.value)


def test_retry_policy_comes_from_the_scheduler_keys() -> None:
    config = scheduler_config_from({}, {"retry_count": 3, "disable_hard_timeout": 60, "disable_window": 10})
    assert config.retry_policy() == (3, 60, 10)


# --- [resources] and [cors] ----------------------------------------------------------------


def test_resources_are_integers(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[resources]\nhive = 2\nspark = 0\n")
    assert load(dirs).resources == {"hive": 2, "spark": 0}


@pytest.mark.parametrize(
    ("value", "problem"),
    [("lots", "expected an integer, got 'lots'"), ("-1", "expected an integer of 0 or more, got -1")],
)
def test_bad_resource_amount(dirs: tuple[Path, Path], value: str, problem: str) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", f"[resources]\nhive = {value}\n")
    assert f"in {cfg} [resources] hive: {problem}" in error_of(dirs)


def test_cors_section(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(
        work / "luigi.cfg",
        """
        [cors]
        enabled = true
        allowed_origins = ["https://a.example", "*", "null",
            "https://b.example", "https://a.example"]
        allow_any_origin = false
        allow_null_origin = true
        max_age = 60
        allowed_methods = GET, POST, OPTIONS
        allowed_headers = Accept
        exposed_headers = X-Thing
        allow_credentials = true
        """,
    )
    assert load(dirs).cors == CorsConfig(
        enabled=True,
        allowed_origins=("https://a.example", "https://b.example"),
        allow_any_origin=False,
        allow_null_origin=True,
        max_age=60,
        allowed_methods="GET, POST, OPTIONS",
        allowed_headers="Accept",
        exposed_headers="X-Thing",
        allow_credentials=True,
    )


@pytest.mark.parametrize("value", ["https://a.example", '"https://a.example"', "[1, 2]", "{}"])
def test_cors_origins_must_be_a_json_list_of_strings(dirs: tuple[Path, Path], value: str) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", f"[cors]\nallowed_origins = {value}\n")
    assert f"in {cfg} [cors] allowed_origins: expected a" in error_of(dirs)


# --- helpers for other subsystems ----------------------------------------------------------


def test_helpers_parse_with_defaults_and_dashes(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(
        work / "luigi.cfg",
        """
        [smtp]
        port = 2525
        ssl = true
        timeout = 2.5
        host = mail.local
        [batch_notifier]
        email-interval = 5
        exclude = ["a", "b"]
        kind = html
        """,
    )
    sections = load(dirs).sections
    assert get_int(sections, "smtp", "port", 25) == 2525
    assert get_bool(sections, "smtp", "ssl", False) is True
    assert get_float(sections, "smtp", "timeout", 10.0) == 2.5
    assert get_str(sections, "smtp", "host", "localhost") == "mail.local"
    assert get_int(sections, "batch_notifier", "email_interval", 60) == 5
    assert get_list(sections, "batch_notifier", "exclude", ()) == ("a", "b")
    assert get_choice(sections, "batch_notifier", "kind", ("html", "text"), "text") == "html"
    assert get_int(sections, "smtp", "missing", None) is None
    assert get_bool(sections, "no_section", "ssl", True) is True


@pytest.mark.parametrize(
    ("getter", "args", "problem"),
    [
        (get_int, (), "expected an integer, got 'many'"),
        (get_float, (), "expected a number, got 'many'"),
        (get_bool, (), "expected true or false, got 'many'"),
        (get_list, (), 'expected a JSON list such as ["a", "b"], got \'many\''),
        (get_choice, (("few", "some"),), "expected one of few, some, got 'many'"),
    ],
)
def test_helper_errors_name_file_section_and_key(
    dirs: tuple[Path, Path], getter: Callable[..., Any], args: tuple[Any, ...], problem: str
) -> None:
    _, work = dirs
    cfg = write(work / "luigi.cfg", "[history]\nsize = many\n")
    sections = load(dirs).sections
    with pytest.raises(ConfigError) as info:
        getter(sections, "history", "size", *args, None)
    assert str(info.value) == f"luigid: config error in {cfg} [history] size: {problem}"


def test_helpers_accept_plain_dicts_without_origins() -> None:
    with pytest.raises(ConfigError) as info:
        get_int({"history": {"size": "many"}}, "history", "size", 0)
    assert str(info.value) == "luigid: config error in [history] size: expected an integer, got 'many'"


def test_multi_line_values_still_give_one_line_errors(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "luigi.cfg", "[scheduler]\nretry_delay = soon\n  and later\n")
    message = error_of(dirs)
    assert "[scheduler] retry_delay" in message


# --- parity with luigi itself --------------------------------------------------------------

LUIGI_PROBE = """
import dataclasses
import json
import warnings
warnings.simplefilter("ignore")
from luigi import configuration
from luigi.scheduler import scheduler
from luigi.server import cors
s = scheduler()
c = cors()
print(json.dumps({
    "scheduler": {k: getattr(s, k) if k != "metrics_collector" else s.metrics_collector.name
                  for k in s.get_param_names()},
    "resources": configuration.get_config().getintdict("resources"),
    "cors": {k: sorted(getattr(c, k)) if k == "allowed_origins" else getattr(c, k)
             for k in c.get_param_names()},
}))
"""


def test_same_values_as_luigi_for_a_cfg_using_every_rule(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    write(work / "client.cfg", "[scheduler]\nretry_count = 3\nremove_delay = 1\n")
    write(
        work / "luigi.cfg",
        """
        [DEFAULT]
        root = /srv
        [scheduler]
        retry-delay = 42
        remove_delay = 7.5
        state_path = %(root)s/${LUIGID_TEST_NAME}.pickle
        record_task_history = True
        pause_enabled = false
        metrics_collector = prometheus
        disable-window = 10
        [resources]
        hive = 3
        Spark = 1
        [cors]
        enabled = true
        allowed_origins = ["https://x.example", "*"]
        max_age = 5
        """,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUIGI_CONFIG")}
    env["LUIGID_TEST_NAME"] = "state"
    probe = subprocess.run(
        [sys.executable, "-c", LUIGI_PROBE], cwd=work, env=env, capture_output=True, text=True, check=True
    )
    theirs = json.loads(probe.stdout)
    ours = load(dirs, {"LUIGID_TEST_NAME": "state"})
    for key, value in theirs["scheduler"].items():
        assert getattr(ours.scheduler, key) == value, key
    assert ours.resources == theirs["resources"]
    for key, value in theirs["cors"].items():
        mine = getattr(ours.cors, key)
        assert (sorted(mine) if key == "allowed_origins" else mine) == value, key


# --- the shipped example file --------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "luigi.cfg.example"


def test_example_file_documents_every_key_with_its_default(dirs: tuple[Path, Path]) -> None:
    _, work = dirs
    text = EXAMPLE.read_text(encoding="utf-8")
    # Uncomment every "# key = value" line: the result must load to luigid's defaults.
    lines = [re.sub(r"^# ([A-Za-z_]+ =.*)$", r"\1", line) for line in text.splitlines()]
    write(work / "luigi.cfg", "\n".join(lines) + "\n")
    config = load(dirs)
    assert config.scheduler == SchedulerConfig()
    assert config.cors == CorsConfig()
    for section, record in (("scheduler", SchedulerConfig), ("cors", CorsConfig)):
        assert set(config.sections[section]) == {f.name for f in dataclasses.fields(record)}
