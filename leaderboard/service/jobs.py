"""The submission queue as rows of the leaderboard database: queued -> scoring -> scored | failed.

Every state change is one ``BEGIN IMMEDIATE`` transaction (SQLite's single writer), which is what makes
the guarantees hold across processes:

* the daily limit: counting today's uploads and inserting the new one happen in the same transaction,
  so concurrent uploads serialise and nobody gets past the limit;
* claiming: a worker takes the oldest job that is queued, or scoring with an expired lease, and writes
  its name and a lease deadline; a worker killed mid-job leaves a lease that runs out;
* exactly once: a job's result (the submission row, its score, ``status = 'scored'``) is written in one
  transaction that first checks the worker still holds the lease, so a worker that lost its lease
  cannot also enter the row; ``jobs.submission_id`` is UNIQUE.

Nothing here depends on SQLite beyond ``BEGIN IMMEDIATE`` and ``RETURNING``: on PostgreSQL the claim
would be ``SELECT ... FOR UPDATE SKIP LOCKED`` and the rest the same statements (see the README).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mosxav_leaderboard.store import now

PHASES = ("validation", "test")
#: Phase -> the ground-truth split it is scored on.
PHASE_SPLITS = {"validation": "val", "test": "test"}
DEFAULT_DAILY_LIMITS = {"validation": 20, "test": 5}
LEASE_SECONDS = 120.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS limits (
    team_id INTEGER NOT NULL REFERENCES teams(id),
    phase TEXT NOT NULL,
    per_day INTEGER NOT NULL,
    PRIMARY KEY (team_id, phase)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    phase TEXT NOT NULL CHECK (phase IN ('validation', 'test')),
    day TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    upload TEXT NOT NULL,
    filename TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'scoring', 'scored', 'failed')),
    lease_owner TEXT,
    lease_expires REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    problems_json TEXT,
    submission_id INTEGER UNIQUE REFERENCES submissions(id),
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, id);
CREATE INDEX IF NOT EXISTS jobs_by_team_day ON jobs (team_id, phase, day);
CREATE TABLE IF NOT EXISTS moderation (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    hidden INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created TEXT NOT NULL
);
"""


class LimitReached(Exception):
    def __init__(self, phase: str, per_day: int) -> None:
        self.phase, self.per_day = phase, per_day
        super().__init__(f"daily limit reached: {per_day} submission(s) per day on the {phase} phase (UTC days)")


@dataclass(frozen=True)
class Job:
    id: int
    team_id: int
    phase: str
    status: str
    created: str
    updated: str
    upload: str
    filename: str
    attempts: int
    problems: list[dict[str, str]]
    submission_id: int | None
    published: bool
    lease_owner: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=int(row["id"]),
            team_id=int(row["team_id"]),
            phase=row["phase"],
            status=row["status"],
            created=row["created"],
            updated=row["updated"],
            upload=row["upload"],
            filename=row["filename"],
            attempts=int(row["attempts"]),
            problems=json.loads(row["problems_json"]) if row["problems_json"] else [],
            submission_id=row["submission_id"],
            published=bool(row["published"]),
            lease_owner=row["lease_owner"],
        )


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def daily_limit(db: sqlite3.Connection, team_id: int, phase: str) -> int:
    row = db.execute("SELECT per_day FROM limits WHERE team_id = ? AND phase = ?", (team_id, phase)).fetchone()
    return int(row["per_day"]) if row else DEFAULT_DAILY_LIMITS[phase]


def set_limit(db: sqlite3.Connection, team_id: int, phase: str, per_day: int) -> None:
    if phase not in PHASES or per_day < 0:
        raise ValueError(f"phase must be one of {PHASES} and the limit >= 0")
    db.execute(
        "INSERT INTO limits (team_id, phase, per_day) VALUES (?, ?, ?) "
        "ON CONFLICT (team_id, phase) DO UPDATE SET per_day = excluded.per_day",
        (team_id, phase, per_day),
    )


def enqueue(db: sqlite3.Connection, team_id: int, phase: str, upload: str, filename: str) -> int:
    """Insert a queued job if the team is under its daily limit (call inside ``BEGIN IMMEDIATE``)."""
    day = today()
    used = db.execute(
        "SELECT COUNT(*) FROM jobs WHERE team_id = ? AND phase = ? AND day = ?", (team_id, phase, day)
    ).fetchone()[0]
    per_day = daily_limit(db, team_id, phase)
    if used >= per_day:
        raise LimitReached(phase, per_day)
    stamp = now()
    cursor = db.execute(
        "INSERT INTO jobs (team_id, phase, day, created, updated, upload, filename, status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued')",
        (team_id, phase, day, stamp, stamp, upload, filename),
    )
    return int(cursor.lastrowid)


def claim(db: sqlite3.Connection, worker: str, lease: float = LEASE_SECONDS) -> Job | None:
    """Take the oldest queued job, or one whose lease ran out (call inside ``BEGIN IMMEDIATE``)."""
    row = db.execute(
        "UPDATE jobs SET status = 'scoring', lease_owner = ?, lease_expires = ?, attempts = attempts + 1, "
        "updated = ? WHERE id = (SELECT id FROM jobs WHERE status = 'queued' "
        "OR (status = 'scoring' AND lease_expires < ?) ORDER BY id LIMIT 1) RETURNING *",
        (worker, time.time() + lease, now(), time.time()),
    ).fetchone()
    return None if row is None else Job.from_row(row)


def holds_lease(db: sqlite3.Connection, job_id: int, worker: str) -> bool:
    row = db.execute("SELECT status, lease_owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row is not None and row["status"] == "scoring" and row["lease_owner"] == worker


def extend_lease(db: sqlite3.Connection, job_id: int, worker: str, lease: float = LEASE_SECONDS) -> bool:
    cursor = db.execute(
        "UPDATE jobs SET lease_expires = ? WHERE id = ? AND status = 'scoring' AND lease_owner = ?",
        (time.time() + lease, job_id, worker),
    )
    return cursor.rowcount == 1


def finish(db: sqlite3.Connection, job_id: int, worker: str, submission_id: int) -> None:
    db.execute(
        "UPDATE jobs SET status = 'scored', submission_id = ?, lease_owner = NULL, lease_expires = NULL, "
        "updated = ? WHERE id = ? AND lease_owner = ?",
        (submission_id, now(), job_id, worker),
    )


def fail(db: sqlite3.Connection, job_id: int, worker: str, problems: list[dict[str, str]]) -> None:
    db.execute(
        "UPDATE jobs SET status = 'failed', problems_json = ?, lease_owner = NULL, lease_expires = NULL, "
        "updated = ? WHERE id = ? AND lease_owner = ?",
        (json.dumps(problems), now(), job_id, worker),
    )


def requeue(db: sqlite3.Connection, job_id: int, worker: str) -> None:
    """Give a job back (a worker told to stop mid-job): the next worker starts it afresh."""
    db.execute(
        "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL, updated = ? "
        "WHERE id = ? AND lease_owner = ? AND status = 'scoring'",
        (now(), job_id, worker),
    )


def get(db: sqlite3.Connection, job_id: int) -> Job | None:
    row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else Job.from_row(row)


def for_team(db: sqlite3.Connection, team_id: int) -> list[Job]:
    rows = db.execute("SELECT * FROM jobs WHERE team_id = ? ORDER BY id DESC", (team_id,)).fetchall()
    return [Job.from_row(r) for r in rows]


def publish(db: sqlite3.Connection, job_id: int, team_id: int, published: bool = True) -> bool:
    cursor = db.execute(
        "UPDATE jobs SET published = ?, updated = ? WHERE id = ? AND team_id = ? AND status = 'scored'",
        (int(published), now(), job_id, team_id),
    )
    return cursor.rowcount == 1


def moderate(db: sqlite3.Connection, submission_id: int, hidden: bool, reason: str) -> None:
    """Hide or unhide a table row; every decision is kept with its reason (the latest one counts)."""
    if not reason.strip():
        raise ValueError("a reason is required")
    if db.execute("SELECT 1 FROM submissions WHERE id = ?", (submission_id,)).fetchone() is None:
        raise ValueError(f"no submission #{submission_id}")
    db.execute(
        "INSERT INTO moderation (submission_id, hidden, reason, created) VALUES (?, ?, ?, ?)",
        (submission_id, int(hidden), reason, now()),
    )


def hidden_rows(db: sqlite3.Connection) -> dict[int, str]:
    """Submission id -> reason, for rows whose latest moderation decision hides them."""
    rows = db.execute(
        "SELECT m.submission_id, m.hidden, m.reason FROM moderation m WHERE m.id = "
        "(SELECT MAX(id) FROM moderation WHERE submission_id = m.submission_id)"
    ).fetchall()
    return {int(r["submission_id"]): r["reason"] for r in rows if r["hidden"]}


def public_submission_ids(db: sqlite3.Connection) -> set[int]:
    """Rows the public table shows: reference runs and operator entries (no job), and published
    submissions, less hidden rows."""
    unpublished = {
        int(r[0])
        for r in db.execute("SELECT submission_id FROM jobs WHERE submission_id IS NOT NULL AND published = 0")
    }
    every = {int(r[0]) for r in db.execute("SELECT id FROM submissions")}
    return every - unpublished - set(hidden_rows(db))


def counts(db: sqlite3.Connection) -> dict[str, Any]:
    rows = db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
    return {r["status"]: int(r["n"]) for r in rows}
