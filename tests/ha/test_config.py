"""The [ha] section: one-line start-up errors, and no driver needed without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from luigid.config import ConfigError
from luigid.ha.config import DEFAULT_LEASE_TIMEOUT, ha_config_from
from tests.support.cli import run_luigid
from tests.support.daemon import Luigid, free_port, luigid_command


def test_without_db_connection_ha_is_off() -> None:
    assert ha_config_from({}, None, 8082) is None
    assert ha_config_from({"ha": {"node_name": "a"}}, None, 8082) is None


def test_defaults_follow_the_address_and_port() -> None:
    config = ha_config_from({"ha": {"db_connection": "postgresql://u@db/luigid"}}, "10.1.2.3", 8090)
    assert config is not None
    assert config.advertise_url == "http://10.1.2.3:8090"
    assert config.node_name.endswith(":8090")
    assert config.lease_timeout == DEFAULT_LEASE_TIMEOUT


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"db_connection": "mysql://u@db/x"}, "db_connection"),
        ({"db_connection": "postgresql://u@db/x", "lease_timeout": "soon"}, "lease_timeout"),
        ({"db_connection": "postgresql://u@db/x", "lease_timeout": "0.5"}, "lease_timeout"),
        ({"db_connection": "postgresql://u@db/x", "advertise_url": "node1:8082"}, "advertise_url"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(values: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ha_config_from({"ha": values}, None, 8082)
    message = str(raised.value)
    assert f"[ha] {key}" in message and "\n" not in message


def test_a_bad_value_stops_the_daemon_with_one_line(tmp_path: Path) -> None:
    done = run_luigid(
        tmp_path,
        "--port",
        str(free_port()),
        config="[ha]\ndb_connection = postgresql://u@127.0.0.1/x\nlease_timeout = never\n",
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "lease_timeout" in line]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr


def test_an_unreachable_database_stops_the_daemon_with_one_line(tmp_path: Path) -> None:
    done = run_luigid(
        tmp_path,
        "--port",
        str(free_port()),
        config=f"[ha]\ndb_connection = postgresql://postgres@127.0.0.1:{free_port()}/test\n",
    )
    assert done.returncode != 0
    assert "[ha] db_connection: cannot use PostgreSQL" in done.stderr and "Traceback" not in done.stderr


PROBE = (
    "import luigid.runtime.server, luigid.ha.handlers, luigid.ha.config, sys; print('psycopg' in sys.modules)"
)


def _blocked_psycopg(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import psycopg`` fails, as on a machine without the driver."""
    blocker = tmp_path / "no-driver"
    blocker.mkdir()
    (blocker / "psycopg.py").write_text("raise ImportError('No module named psycopg')\n")
    return {"PYTHONPATH": f"{blocker}:{Path(__file__).resolve().parents[2]}"}


def test_one_node_without_ha_needs_no_driver(tmp_path: Path) -> None:
    env = _blocked_psycopg(tmp_path)
    node = Luigid(tmp_path / "plain", "[scheduler]\nretry_delay = 5\n", env=env).start()
    try:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE],
            env=env,
            capture_output=True,
            text=True,
        )
        assert probe.stdout.strip() == "False", probe.stderr
        assert node.answers()
    finally:
        node.stop()
    # with [ha] and no driver: one line saying what to install
    config = tmp_path / "ha.cfg"
    config.write_text("[ha]\ndb_connection = postgresql://postgres@127.0.0.1:5432/test\n")
    done = subprocess.run(
        [*luigid_command(), "--port", str(free_port()), "--state-path", str(tmp_path / "s.pickle")],
        env={**os.environ, **env, "LUIGI_CONFIG_PATH": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "[ha] needs psycopg 3 (pip install 'luigid[ha]')" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
