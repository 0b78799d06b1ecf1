"""Logging set-up, in luigid's order of precedence, and per-request log lines, observed
on a real ``luigid`` process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support import free_port
from tests.support.cli import CliLuigid, error_line, run_luigid


def test_logdir_in_foreground_logs_to_file_not_stderr(
    luigids: Callable[..., CliLuigid], tmp_path: Path
) -> None:
    logdir = tmp_path / "logs"
    server = luigids("--logdir", str(logdir)).start()
    server.call("ping", worker="w")
    assert server.stop() == 0
    log = (logdir / "luigi-server.log").read_text()
    assert "Scheduler starting up" in log and "Saved state in" in log
    assert "Scheduler starting up" not in server.stderr()


def test_default_logs_to_stderr_in_luigis_format(luigids: Callable[..., CliLuigid]) -> None:
    server = luigids().start()
    assert server.stop() == 0
    line = next(line for line in server.stderr().splitlines() if "Scheduler starting up" in line)
    # "%(asctime)s %(name)s[%(process)s] %(levelname)s: %(message)s"
    assert f"luigi.server[{server.proc.pid}] INFO: Scheduler starting up" in line


def test_requests_are_debug_lines_until_slower_than_the_threshold(
    luigids: Callable[..., CliLuigid], tmp_path: Path
) -> None:
    quiet = luigids().start()
    quiet.call("ping", worker="w")
    assert quiet.stop() == 0
    assert "/api/ping" not in quiet.stderr()  # debug level: below the default INFO

    loud = luigids(config="[scheduler]\nslow_request_seconds = 0\n").start()
    loud.call("ping", worker="w")
    assert loud.stop() == 0
    (line,) = [line for line in loud.stderr().splitlines() if "/api/ping" in line]
    assert "WARNING" in line and "200 POST /api/ping" in line


def test_bad_slow_request_threshold_is_refused(tmp_path: Path) -> None:
    result = run_luigid(
        tmp_path,
        "--port",
        str(free_port()),
        "--state-path",
        str(tmp_path / "s.pickle"),
        config="[scheduler]\nslow_request_seconds = -1\n",
    )
    assert result.returncode == 2
    assert "slow_request_seconds" in error_line(result.stderr)


def test_logging_conf_file_wins_over_logdir(luigids: Callable[..., CliLuigid], tmp_path: Path) -> None:
    target = tmp_path / "from-conf.log"
    conf = tmp_path / "logging.conf"
    conf.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=file\n[formatters]\nkeys=plain\n"
        "[logger_root]\nlevel=DEBUG\nhandlers=file\n"
        f"[handler_file]\nclass=FileHandler\nformatter=plain\nargs=({str(target)!r},)\n"
        "[formatter_plain]\nformat=CONF %(levelname)s %(message)s\n"
    )
    logdir = tmp_path / "logs"
    server = luigids("--logdir", str(logdir), config=f"[core]\nlogging_conf_file = {conf}\n").start()
    server.call("ping", worker="w")
    assert server.stop() == 0
    log = target.read_text()
    assert "CONF INFO Scheduler starting up" in log
    assert "CONF DEBUG 200 POST /api/ping" in log  # one line per request at debug level
    assert not (logdir / "luigi-server.log").exists()


def test_logging_section_of_a_toml_config_is_applied(
    luigids: Callable[..., CliLuigid], tmp_path: Path
) -> None:
    target = tmp_path / "from-toml.log"
    config = f"""
[logging]
version = 1
disable_existing_loggers = false
[logging.formatters.plain]
format = "TOML %(levelname)s %(message)s"
[logging.handlers.file]
class = "logging.FileHandler"
formatter = "plain"
filename = "{target}"
[logging.root]
level = "INFO"
handlers = ["file"]
"""
    server = luigids(config=config, syntax="toml").start()
    assert server.stop() == 0
    assert "TOML INFO Scheduler starting up" in target.read_text()


def test_no_configure_logging_leaves_logging_alone(luigids: Callable[..., CliLuigid], tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    server = luigids("--logdir", str(logdir), config="[core]\nno_configure_logging = true\n").start()
    assert server.stop() == 0
    assert "Scheduler starting up" not in server.stderr()
    assert not (logdir / "luigi-server.log").exists()
