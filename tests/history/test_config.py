"""[task_history] parsing and engine creation: defaults, bad values and missing drivers as one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from luigid.config import ConfigError
from luigid.history import DbTaskHistory, HistoryConfig, parse_history_config
from luigid.history.engine import open_engine


def test_defaults_match_luigi() -> None:
    config = parse_history_config({})
    assert config == HistoryConfig()
    assert config.db_connection == "sqlite:///luigi-task-hist.db"
    assert config.retention_days is None


def test_values_are_parsed() -> None:
    config = parse_history_config(
        {
            "task_history": {
                "db_connection": " postgresql://u@h/db ",
                "retention_days": "30",
                "queue_size": "50",
                "batch_size": "7",
                "flush_interval": "0.5",
                "max_tracked_runs": "10",
                "page_size": "20",
            }
        }
    )
    assert config == HistoryConfig("postgresql://u@h/db", 30.0, 50, 7, 0.5, 10, 20)


@pytest.mark.parametrize("value", ["0", ""])
def test_retention_zero_or_empty_is_off(value: str) -> None:
    assert parse_history_config({"task_history": {"retention_days": value}}).retention_days is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("queue_size", "lots"),
        ("queue_size", "0"),
        ("batch_size", "-3"),
        ("retention_days", "-1"),
        ("retention_days", "a week"),
        ("flush_interval", "inf"),
        ("page_size", "1.5"),
    ],
)
def test_bad_values_name_section_and_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_history_config({"task_history": {key: value}})
    message = str(error.value)
    assert message.startswith(f"[task_history] {key}:")
    assert repr(value) in message and "\n" not in message


def test_missing_postgres_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError) as error:
        DbTaskHistory.from_config({"task_history": {"db_connection": "postgresql://luigi:s3cret@db/hist"}})
    message = str(error.value)
    assert message.startswith("[task_history] db_connection:")
    assert "pip install psycopg2-binary" in message
    assert "s3cret" not in message and "\n" not in message


def test_missing_sqlalchemy_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(ConfigError, match=r"pip install 'luigid\[history\]'"):
        DbTaskHistory.from_config({})


@pytest.mark.parametrize(
    ("url", "expected"),
    [("nonsense", "not a database URL"), ("nosuchdb://x/y", "unknown database kind 'nosuchdb'")],
)
def test_bad_urls(url: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        open_engine(url)


def test_plain_postgresql_url_uses_psycopg2_like_luigi_setups() -> None:
    engine = open_engine("postgresql://postgres@127.0.0.1/test")  # no connection is made
    assert engine.dialect.driver == "psycopg2"
    engine.dispose()


def test_from_config_makes_no_connection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never' / 'made.db'}"  # directory does not exist
    history = DbTaskHistory.from_config({"task_history": {"db_connection": url, "queue_size": "5"}})
    assert history.config.queue_size == 5
    assert not (tmp_path / "never").exists()
