"""The leaderboard schema's migrations: a fresh database on each backend is what ``tables.py`` says, a
database made by the code before migrations (``tests/data/leaderboard-2fd3a37.sqlite``) upgrades in
place with nothing lost, and processes starting together on a new database migrate it once."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import warnings
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mosxav_leaderboard.engine import head_revision, open_engine
from mosxav_leaderboard.service.database import Database
from mosxav_leaderboard.tables import metadata

LEGACY = Path(__file__).parent / "data" / "leaderboard-2fd3a37.sqlite"


def _differences(db: str, *, compare_type: bool) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLite cannot reflect the expression index (PostgreSQL compares it)
        with open_engine(db).connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": compare_type})
            return compare_metadata(context, metadata)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_new_database_is_the_schema_the_code_declares(backend, database_url):
    db = database_url(backend)
    assert _differences(db, compare_type=True) == []
    with open_engine(db).connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head_revision()
        assert connection.exec_driver_sql("SELECT n FROM board_revision").scalar() == 0


def test_a_database_of_the_code_before_migrations_upgrades_in_place(tmp_path):
    copy = tmp_path / "leaderboard.sqlite"
    shutil.copy(LEGACY, copy)
    database = Database(copy)
    with database.reading() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head_revision()
    # Same tables, columns, keys and indexes as a new database (SQLite's REAL/INTEGER spellings aside).
    assert [d for d in _differences(str(copy), compare_type=False) if d[0][0] != "modify_nullable"] == []
    teams = {t["name"]: t for t in database.list_teams()}
    assert set(teams) == {"alpha", "beta"} and teams["beta"]["revoked"] == 1 and teams["alpha"]["submissions"] == 3
    jobs = {job.id: job for job in database.jobs_for_team(teams["alpha"]["id"])}
    assert [jobs[i].status for i in (1, 2, 3)] == ["scored", "failed", "queued"]
    assert all(job.kind == "predictions" for job in jobs.values())
    assert jobs[1].upload == "0123456789abcdef0123456789abcdef/upload.zip"  # relative to the uploads folder now
    assert jobs[1].published and jobs[1].gt_hash == "g" * 64 and jobs[2].problems[0]["message"] == "bad"
    assert database.daily_limit(teams["alpha"]["id"], "test", 5) == 3
    assert database.state("gt_fingerprint") == "g" * 64
    [entry] = database.public_entries()  # the reference run stays hidden, the published job shows
    assert (entry.job_id, entry.team) == (1, "alpha")
    stored = {s["id"]: s["provenance"] for s in database.store.submissions()}
    assert stored == {1: "predictions", 2: "reference"}  # back-filled past the append-only trigger
    assert database.store.scores("1.0")[1].summary == {"mean": {"dice": 0.5}}
    revision = database.revision()
    database.moderate("1", True, "checking the triggers survived")
    assert database.revision() == revision + 1
    with pytest.raises(ValueError, match="exists already"):
        database.add_team("ALPHA")
    claimed = database.claim("after-upgrade", 60, 3)
    assert claimed is not None and claimed.id == 3
    raw = sqlite3.connect(copy)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("DELETE FROM submissions")
    raw.close()


def _open(db: str, results: multiprocessing.Queue) -> None:
    try:
        database = Database(db)
        database.add_team(f"team-{multiprocessing.current_process().name}")
        results.put("ok")
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(repr(exc))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_starting_together_on_a_new_database_migrate_it_once(backend, database_url):
    db = database_url(backend)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_open, args=(db, results), name=f"p{k}") for k in range(4)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    assert outcomes == ["ok"] * 4
    with open_engine(db).connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM alembic_version").scalar() == 1
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM teams").scalar() == 4


def test_only_sqlite_and_postgresql_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="only SQLite and PostgreSQL"):
        Database("mysql://user@localhost/board")
    with pytest.raises(sqlalchemy.exc.ArgumentError):
        Database("not a url://")
