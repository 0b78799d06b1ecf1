"""Databases written by luigi's own DbTaskHistory open in ours, and luigi reads what we write.

luigi runs in a subprocess (its configuration is process-global). With SQLAlchemy 2 luigi's
``_upgrade_schema`` crashes on SQLite (it executes a plain SQL string), one of the startup
crashes luigid exists to fix; the luigi side of these tests skips that function on SQLite
only, so that luigi can produce and read the database at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.history.support import HistoryFactory, make_task, read_tables, run_once, run_python

LUIGI_PRELUDE = """
import json, os, sys
import luigi.db_task_history as dth
if os.environ["HIST_URL"].startswith("sqlite"):
    dth._upgrade_schema = lambda engine: None  # luigi + SQLAlchemy 2 bug on SQLite, see module docstring
"""

LUIGI_WRITES = """
from luigi.scheduler import Scheduler
s = Scheduler(record_task_history=True)
assert s.has_task_history()
p = {"date": "2024-03-01"}
s.add_task(worker="w1", task_id="Crunch_2024_03_01", family="Crunch", params=p, status="PENDING")
assert s.get_work(worker="w1", host="luigi-box")["task_id"] == "Crunch_2024_03_01"
s.add_task(worker="w1", task_id="Crunch_2024_03_01", family="Crunch", params=p, status="FAILED", expl="oops")
s.add_task(worker="w1", task_id="Crunch_2024_03_01", family="Crunch", params=p, status="PENDING")
assert s.get_work(worker="w1", host="luigi-box")["task_id"] == "Crunch_2024_03_01"
s.add_task(worker="w1", task_id="Crunch_2024_03_01", family="Crunch", params=p, status="DONE")
s.add_task(worker="w1", task_id="Load_1", family="Load", params={"n": "1"}, status="PENDING")
"""

LUIGI_READS = """
h = dth.DbTaskHistory()
def show(record):
    return {
        "id": record.id, "task_id": record.task_id, "name": record.name, "host": record.host,
        "params": {k: v.value for k, v in record.parameters.items()},
        "events": [e.event_name for e in record.events],
    }
# luigi's own pages read inside a session like this
with h._session() as session:
    out = {
        "by_name": [show(r) for r in h.find_all_by_name("Crunch", session)],
        "by_params": [r.id for r in h.find_all_by_parameters("Crunch", session, date="2024-03-01")],
        "latest": sorted({r.id for r in h.find_latest_runs(session)}),
        "by_task_id": show(h.find_task_by_task_id("Crunch_2024_03_01", session)),
        "events": len(h.find_all_events(session)),
    }
    out["by_id"] = show(h.find_task_by_id(out["by_name"][0]["id"], session))
print(json.dumps(out))
"""


def run_luigi(script: str, db_url: str, tmp_path: Path) -> str:
    config = tmp_path / "luigi.cfg"
    config.write_text(f"[core]\nautoload_range = false\n\n[task_history]\ndb_connection = {db_url}\n")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(config), HIST_URL=db_url)
    return run_python(LUIGI_PRELUDE + script, env=env)


def test_database_written_by_luigi_opens_in_ours(
    make_history: HistoryFactory, db_url: str, tmp_path: Path
) -> None:
    run_luigi(LUIGI_WRITES, db_url, tmp_path)
    luigi_rows = read_tables(db_url)
    assert len(luigi_rows["tasks"]) == 2  # luigi keeps one row per task id
    assert [r[2] for r in luigi_rows["task_events"]] == [
        "PENDING",
        "RUNNING",
        "FAILED",
        "PENDING",
        "RUNNING",
        "DONE",
        "PENDING",
    ]

    history = make_history()
    assert history.flush(timeout=30)  # the writer has added our message table, nothing else

    (crunch,) = history.runs_by_name("Crunch")
    assert (crunch.task_id, crunch.host, crunch.params) == (
        "Crunch_2024_03_01",
        "luigi-box",
        {"date": "2024-03-01"},
    )
    assert crunch.last_event is not None and crunch.last_event.name == "DONE"
    detail = history.run_by_id(crunch.id)
    assert detail is not None
    assert [e.name for e in detail.events] == ["DONE", "RUNNING", "PENDING", "FAILED", "RUNNING", "PENDING"]
    assert all(e.message is None for e in detail.events)
    assert [r.id for r in history.runs_by_params("Crunch", {"date": "2024-03-01"})] == [crunch.id]
    assert {r.name for r in history.recent_runs()} == {"Crunch", "Load"}
    assert [(f.name, f.runs) for f in history.families()] == [("Crunch", 1), ("Load", 1)]
    points = history.run_durations("Crunch")
    assert [p.outcome for p in points] == ["FAILED", "DONE"]  # two runs inside luigi's one row
    assert all(p.seconds >= 0 for p in points)

    # New runs go into the same database next to luigi's rows.
    run_once(history, make_task("Crunch_2024_03_01", family="Crunch", params={"date": "2024-03-01"}))
    assert history.flush(timeout=30)
    assert len(history.runs_by_name("Crunch")) == 2
    assert read_tables(db_url)["tasks"][:2] == luigi_rows["tasks"]


def test_luigi_reads_what_we_write(make_history: HistoryFactory, db_url: str, tmp_path: Path) -> None:
    history = make_history()
    task = make_task("Crunch_2024_03_01", family="Crunch", params={"date": "2024-03-01"})
    run_once(history, task, host="box-1", failure="oops")
    run_once(history, task, host="box-2")
    history.task_scheduled(make_task("Load_1", family="Load", params={"n": "1"}))
    assert history.flush(timeout=30)
    ours = read_tables(db_url)
    first, second = (r[0] for r in ours["tasks"][:2])

    seen = json.loads(run_luigi(LUIGI_READS, db_url, tmp_path))
    assert [r["id"] for r in seen["by_name"]] == [first, second]
    assert seen["by_name"][0] == {
        "id": first,
        "task_id": "Crunch_2024_03_01",
        "name": "Crunch",
        "host": "box-1",
        "params": {"date": "2024-03-01"},
        "events": ["FAILED", "RUNNING", "PENDING"],
    }
    assert seen["by_name"][1]["events"] == ["DONE", "RUNNING", "PENDING"]
    assert seen["by_id"]["id"] == first
    assert seen["by_task_id"]["id"] == second  # luigi's "latest row for this task id"
    assert set(seen["by_params"]) == {first, second}
    assert seen["latest"] == [r[0] for r in ours["tasks"]]
    assert seen["events"] == 7


def test_we_never_alter_luigis_tables(make_history: HistoryFactory, db_url: str, tmp_path: Path) -> None:
    run_luigi(LUIGI_WRITES, db_url, tmp_path)
    engine = sa.create_engine(db_url)

    def layout() -> dict[str, list[tuple[str, str, bool]]]:
        inspector = sa.inspect(engine)
        return {
            table: [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
            for table in ("tasks", "task_parameters", "task_events")
        }

    before = layout()
    history = make_history()
    assert history.flush(timeout=30)
    assert layout() == before
    assert "task_event_messages" in sa.inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_luigis_scheduler_can_keep_writing_to_our_database(
    make_history: HistoryFactory, db_url: str, tmp_path: Path
) -> None:
    history = make_history()
    run_once(history, make_task("Load_9", family="Load"), failure="first failure")
    assert history.stop(timeout=30)
    run_luigi(LUIGI_WRITES, db_url, tmp_path)
    rows = read_tables(db_url)
    assert sorted({r[2] for r in rows["tasks"]}) == ["Crunch", "Load"]
    assert [m for _, m in rows["task_event_messages"]] == ["first failure"]


def describe_tables(url: str) -> dict[str, object]:
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    described: dict[str, object] = {}
    for table in ("tasks", "task_parameters", "task_events"):
        described[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
        }
    engine.dispose()
    return described


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_fresh_database_has_luigis_layout(make_history: HistoryFactory, tmp_path: Path) -> None:
    luigi_url = f"sqlite:///{tmp_path / 'luigi.db'}"
    run_luigi(LUIGI_WRITES, luigi_url, tmp_path)
    ours_url = f"sqlite:///{tmp_path / 'ours.db'}"
    assert make_history(ours_url).flush(timeout=30)
    assert describe_tables(ours_url) == describe_tables(luigi_url)
