"""The leaderboard database's tables, as SQLAlchemy Core objects: what every statement is written against.

Two layers share one database: the store (``submissions``, ``scores``: append-only, kept by triggers)
and the service (teams, sessions, limits, the job queue, moderation, workers, service state and the
board revision that triggers bump). The schema is *made* only by the Alembic migrations in
``mosxav_leaderboard.migrations`` (``mosxav_leaderboard.engine.migrate``); these objects describe the
head revision and must be changed together with a new migration (``tests/test_migrations.py`` compares
them with a migrated database).

Identifiers are 64-bit on PostgreSQL (the API takes ids up to 2^63 - 1) and SQLite's ``INTEGER PRIMARY
KEY AUTOINCREMENT`` there (ids never reused). Flags stay integers and times stay ISO text or epoch
seconds, as the first (SQLite-only) schema stored them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from mosxav_leaderboard.columns import PROVENANCES, SUBMISSION_KINDS

#: A 64-bit key on PostgreSQL, SQLite's rowid alias there.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

submissions = Table(
    "submissions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("dataset_hash", Text, nullable=False),
    Column("split", Text, nullable=False),
    Column("labeled_fraction", Float, nullable=False),
    Column("prediction_hash", Text, nullable=False),
    Column("predictions_dir", Text, nullable=False),
    Column("is_reference", Integer, nullable=False, server_default="0"),
    Column("meta_json", Text, nullable=False),
    Column(
        "provenance",
        Text,
        CheckConstraint(f"provenance IN {PROVENANCES}", name="submissions_provenance"),
        nullable=False,
        server_default="predictions",
    ),
    UniqueConstraint("prediction_hash", "dataset_hash"),
    sqlite_autoincrement=True,
)

scores = Table(
    "scores",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("submission_id", Id, ForeignKey("submissions.id"), nullable=False),
    Column("created", Text, nullable=False),
    Column("metric_version", Text, nullable=False),
    Column("toolkit_version", Text, nullable=False),
    Column("dataset_hash", Text, nullable=False),
    Column("summary_json", Text, nullable=False),
    Column("sequences_json", Text, nullable=False),
    UniqueConstraint("submission_id", "metric_version"),
    sqlite_autoincrement=True,
)

teams = Table(
    "teams",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("created", Text, nullable=False),
    Column("revoked", Integer, nullable=False, server_default="0"),
    sqlite_autoincrement=True,
)
Index("teams_name_folded", func.lower(teams.c.name), unique=True)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", Text, primary_key=True),
    Column("team_id", Id, ForeignKey("teams.id"), nullable=False),
    Column("csrf", Text, nullable=False),
    Column("created", Text, nullable=False),
    Column("expires", Float, nullable=False),
)

limits = Table(
    "limits",
    metadata,
    Column("team_id", Id, ForeignKey("teams.id"), primary_key=True),
    Column("phase", Text, primary_key=True),
    Column("per_day", Integer, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, ForeignKey("teams.id"), nullable=False),
    Column("phase", Text, CheckConstraint("phase IN ('validation', 'test')"), nullable=False),
    Column("day", Text, nullable=False),
    Column("created", Text, nullable=False),
    Column("updated", Text, nullable=False),
    Column("upload", Text, nullable=False),
    Column("filename", Text, nullable=False),
    Column("status", Text, CheckConstraint("status IN ('queued', 'scoring', 'scored', 'failed')"), nullable=False),
    Column("lease_owner", Text),
    Column("lease_expires", Float),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("problems_json", Text),
    Column("submission_id", Id, ForeignKey("submissions.id"), unique=True),
    Column("published", Integer, nullable=False, server_default="0"),
    Column("gt_hash", Text),
    Column("scored_by", Text),
    Column(
        "kind",
        Text,
        CheckConstraint(f"kind IN {SUBMISSION_KINDS}", name="jobs_kind"),
        nullable=False,
        server_default="predictions",
    ),
    #: the job ran a team's model (counts against the daily limit even when it failed)
    Column("ran", Integer, nullable=False, server_default="0"),
    #: CPU seconds its model used: the fair queue takes the team that used least today first
    Column("compute_seconds", Float, nullable=False, server_default="0"),
    sqlite_autoincrement=True,
)
Index("jobs_by_status", jobs.c.status, jobs.c.id)
Index("jobs_by_team_day", jobs.c.team_id, jobs.c.phase, jobs.c.day)

moderation = Table(
    "moderation",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("submission_id", Id, ForeignKey("submissions.id"), nullable=False),
    Column("hidden", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", Text, nullable=False),
    sqlite_autoincrement=True,
)

workers = Table(
    "workers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("gt_hash", Text, nullable=False),
    Column("started", Text, nullable=False),
    Column("beat", Float, nullable=False),
)

service_state = Table(
    "service_state",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

board_revision = Table(
    "board_revision",
    metadata,
    Column("id", Integer, CheckConstraint("id = 1"), primary_key=True, autoincrement=False),
    Column("n", BigInteger, nullable=False),
)

__all__ = [
    "board_revision",
    "jobs",
    "limits",
    "metadata",
    "moderation",
    "scores",
    "service_state",
    "sessions",
    "submissions",
    "teams",
    "workers",
]
