"""The service's data layer: the one module that owns its schema and every SQL statement it runs.

The tables live in the leaderboard database beside the store's ``submissions`` and ``scores``
(``mosxav_leaderboard.store``): teams and their token hashes, server-side sessions, per-team limits,
the job queue, moderation decisions, the registry of worker processes, and a revision counter that
triggers bump whenever anything the public table shows changes (so a page is recomputed only then).

Every state change is one ``BEGIN IMMEDIATE`` transaction (SQLite's single writer), which is what
makes the guarantees hold across processes:

* the daily limit: counting today's uploads and inserting the new one happen in one transaction, so
  concurrent uploads serialise and nobody gets past the limit;
* claiming: a worker takes the oldest job that is queued, or scoring with an expired lease, and
  writes its name and a lease deadline; a job whose workers died ``max_attempts`` times fails;
* exactly once: a job's result (the submission row, its score, ``status = 'scored'``) is written in
  one transaction that first checks the worker still holds the lease; ``jobs.submission_id`` is UNIQUE.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mosxav_leaderboard.service.accounts import Team, new_token, normalise_team_name, token_hash
from mosxav_leaderboard.store import DuplicateSubmission, Store, now

SCHEMA = """
CREATE TABLE IF NOT EXISTS teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    csrf TEXT NOT NULL,
    created TEXT NOT NULL,
    expires REAL NOT NULL
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
CREATE TABLE IF NOT EXISTS workers (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    gt_hash TEXT NOT NULL,
    started TEXT NOT NULL,
    beat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS service_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS board_revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO board_revision (id, n) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS board_on_submission AFTER INSERT ON submissions
    BEGIN UPDATE board_revision SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS board_on_score AFTER INSERT ON scores
    BEGIN UPDATE board_revision SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS board_on_moderation AFTER INSERT ON moderation
    BEGIN UPDATE board_revision SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS board_on_job AFTER UPDATE OF published, submission_id ON jobs
    BEGIN UPDATE board_revision SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS board_on_team AFTER UPDATE OF name ON teams
    BEGIN UPDATE board_revision SET n = n + 1; END;
"""

#: Columns added to ``jobs`` after its first release: (name, declaration); added in place when missing.
JOB_COLUMNS_ADDED = (("gt_hash", "TEXT"), ("scored_by", "TEXT"))
#: A job is counted against the daily limit unless it failed (a refused submission costs no slot).
COUNTED = "status != 'failed'"


class LimitReached(Exception):
    """An upload the phase's rules refuse; ``retry_after`` is the seconds until it may be tried again."""

    def __init__(self, message: str, retry_after: int | None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


@dataclass(frozen=True)
class Job:
    id: int
    team_id: int
    team: str
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
    gt_hash: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=int(row["id"]),
            team_id=int(row["team_id"]),
            team=row["team"],
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
            gt_hash=row["gt_hash"],
        )


@dataclass(frozen=True)
class PublicEntry:
    """A row the public table may show: a reference run (no job) or a team's published submission."""

    submission_id: int
    job_id: int | None
    team: str | None
    phase: str | None
    created: str
    split: str  # the ground-truth split scored (names the phase of a reference run)


_JOB = "SELECT j.*, t.name AS team FROM jobs j JOIN teams t ON t.id = j.team_id"


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def seconds_to_midnight() -> int:
    moment = datetime.now(timezone.utc)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - moment).total_seconds()) + 1)


class Database:
    """The service's statements over one leaderboard database file (the schema made once here)."""

    def __init__(self, path: str | Path) -> None:
        self.store = Store(path)
        self._write_lock = threading.Lock()
        with self.store.reading() as db:
            db.executescript(SCHEMA)
        with self.store.transaction() as db:
            present = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
            for name, declaration in JOB_COLUMNS_ADDED:
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self.store.reading() as db:
            yield db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction. Writers of this process queue on a lock first: SQLite's own busy
        handler sleeps in growing steps (up to 100 ms) while another connection holds the write lock,
        which put a 400 ms tail on uploads acknowledged at once; other processes still meet it."""
        with self._write_lock, self.store.transaction() as db:
            yield db

    # -- teams and tokens ---------------------------------------------------------------------------

    def add_team(self, name: str) -> tuple[Team, str]:
        """A new team and its token (the only time the token exists in clear)."""
        name = normalise_team_name(name)
        token = new_token()
        with self.transaction() as db:
            taken = db.execute("SELECT 1 FROM teams WHERE lower(name) = lower(?)", (name,)).fetchone()
            if taken:
                raise ValueError(f"team {name!r} exists already")
            cursor = db.execute(
                "INSERT INTO teams (name, token_hash, created) VALUES (?, ?, ?)", (name, token_hash(token), now())
            )
        return Team(int(cursor.lastrowid), name, False), token

    def rotate_token(self, name: str) -> str:
        """Revoke a team's token and sessions and give it a new token."""
        token = new_token()
        with self.transaction() as db:
            team_id = self._team_id(db, name)
            db.execute("UPDATE teams SET token_hash = ?, revoked = 0 WHERE id = ?", (token_hash(token), team_id))
            db.execute("DELETE FROM sessions WHERE team_id = ?", (team_id,))
        return token

    def revoke(self, name: str) -> None:
        """Revoke a team's token and end its sessions: it can no longer write or sign in."""
        with self.transaction() as db:
            team_id = self._team_id(db, name)
            db.execute("UPDATE teams SET revoked = 1 WHERE id = ?", (team_id,))
            db.execute("DELETE FROM sessions WHERE team_id = ?", (team_id,))

    @staticmethod
    def _team_id(db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT id FROM teams WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ValueError(f"no team {name!r}")
        return int(row["id"])

    def team_for_token(self, token: str) -> Team | None:
        with self.reading() as db:
            row = db.execute(
                "SELECT id, name, revoked FROM teams WHERE token_hash = ?", (token_hash(token),)
            ).fetchone()
        if row is None or row["revoked"]:
            return None
        return Team(int(row["id"]), row["name"], False)

    def list_teams(self) -> list[dict[str, Any]]:
        with self.reading() as db:
            rows = db.execute(
                "SELECT t.id, t.name, t.created, t.revoked, "
                "(SELECT COUNT(*) FROM jobs j WHERE j.team_id = t.id) AS submissions FROM teams t ORDER BY t.id"
            ).fetchall()
        return [dict(r) for r in rows]

    # -- sessions (server-side: signing out ends them) ------------------------------------------------

    def open_session(self, team: Team, hours: float) -> str:
        """A new session for ``team``; returns the cookie value (only its hash is stored)."""
        value = secrets.token_urlsafe(32)
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            db.execute(
                "INSERT INTO sessions (id_hash, team_id, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
                (token_hash(value), team.id, secrets.token_hex(16), now(), time.time() + hours * 3600),
            )
        return value

    def session(self, value: str | None) -> tuple[Team, str] | None:
        """The signed-in team and the session's CSRF token, or None (unknown, expired, revoked)."""
        if not value or len(value) > 100:
            return None
        with self.reading() as db:
            row = db.execute(
                "SELECT t.id, t.name, t.revoked, s.csrf, s.expires FROM sessions s JOIN teams t ON t.id = s.team_id "
                "WHERE s.id_hash = ?",
                (token_hash(value),),
            ).fetchone()
        if row is None or row["revoked"] or row["expires"] < time.time():
            return None
        return Team(int(row["id"]), row["name"], False), row["csrf"]

    def close_session(self, value: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (token_hash(value),))

    # -- limits and the queue -----------------------------------------------------------------------

    def set_limit(self, name: str, phase: str, per_day: int) -> None:
        if per_day < 0:
            raise ValueError("the limit must be >= 0")
        with self.transaction() as db:
            db.execute(
                "INSERT INTO limits (team_id, phase, per_day) VALUES (?, ?, ?) "
                "ON CONFLICT (team_id, phase) DO UPDATE SET per_day = excluded.per_day",
                (self._team_id(db, name), phase, per_day),
            )

    @staticmethod
    def _limit(db: sqlite3.Connection, team_id: int, phase: str, default: int) -> int:
        row = db.execute("SELECT per_day FROM limits WHERE team_id = ? AND phase = ?", (team_id, phase)).fetchone()
        return int(row["per_day"]) if row else default

    def daily_limit(self, team_id: int, phase: str, default: int) -> int:
        with self.reading() as db:
            return self._limit(db, team_id, phase, default)

    @staticmethod
    def _used(db: sqlite3.Connection, team_id: int, phase: str, day: str) -> int:
        query = f"SELECT COUNT(*) FROM jobs WHERE team_id = ? AND phase = ? AND day = ? AND {COUNTED}"
        return int(db.execute(query, (team_id, phase, day)).fetchone()[0])

    def used_today(self, team_id: int, phase: str) -> int:
        with self.reading() as db:
            return self._used(db, team_id, phase, today())

    def enqueue(self, team: Team, phase: str, default_limit: int, upload: str, filename: str) -> int:
        """Queue a job if the team is under its daily limit for the phase; raises ``LimitReached``."""
        day = today()
        with self.transaction() as db:
            per_day = self._limit(db, team.id, phase, default_limit)
            if per_day == 0:
                raise LimitReached(f"team {team.name!r} may not submit to the {phase} phase (limit set to 0)", None)
            if self._used(db, team.id, phase, day) >= per_day:
                raise LimitReached(
                    f"daily limit reached: {per_day} submission(s) per UTC day on the {phase} phase; "
                    "failed submissions do not count",
                    seconds_to_midnight(),
                )
            stamp = now()
            cursor = db.execute(
                "INSERT INTO jobs (team_id, phase, day, created, updated, upload, filename, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued')",
                (team.id, phase, day, stamp, stamp, upload, filename),
            )
        return int(cursor.lastrowid)

    def claim(self, worker: str, lease: float, max_attempts: int) -> Job | None:
        """Take the oldest queued job, or one whose lease ran out; fail jobs out of attempts first."""
        with self.transaction() as db:
            stale = "status = 'scoring' AND lease_expires < ?"
            problem = json.dumps(
                [{"path": ".", "message": f"scoring was interrupted {max_attempts} times; the operators were told"}]
            )
            db.execute(
                f"UPDATE jobs SET status = 'failed', problems_json = ?, lease_owner = NULL, lease_expires = NULL, "
                f"updated = ? WHERE {stale} AND attempts >= ?",
                (problem, now(), time.time(), max_attempts),
            )
            row = db.execute(
                "UPDATE jobs SET status = 'scoring', lease_owner = ?, lease_expires = ?, attempts = attempts + 1, "
                f"updated = ? WHERE id = (SELECT id FROM jobs WHERE status = 'queued' OR ({stale}) "
                "ORDER BY id LIMIT 1) RETURNING id",
                (worker, time.time() + lease, now(), time.time()),
            ).fetchone()
            return None if row is None else self._job(db, int(row["id"]))

    def extend_lease(self, job_id: int, worker: str, lease: float) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET lease_expires = ? WHERE id = ? AND status = 'scoring' AND lease_owner = ?",
                (time.time() + lease, job_id, worker),
            )
        return cursor.rowcount == 1

    def record_result(
        self, job: Job, worker: str, gt_hash: str, fields: dict[str, Any] | None, problems: list[dict[str, str]]
    ) -> str:
        """Enter a job's outcome if ``worker`` still holds its lease: the scored row (``fields``, the
        keyword arguments of ``Store.insert_submission``) or the problems. Returns the job's status,
        or ``lost-lease``."""
        with self.transaction() as db:
            row = db.execute("SELECT status, lease_owner FROM jobs WHERE id = ?", (job.id,)).fetchone()
            if row is None or row["status"] != "scoring" or row["lease_owner"] != worker:
                return "lost-lease"
            if fields is not None:
                try:
                    submission_id = self.store.insert_submission(db, **fields)
                except DuplicateSubmission as exc:
                    problems = [self._duplicate(db, exc.existing_id)]
                else:
                    db.execute(
                        "UPDATE jobs SET status = 'scored', submission_id = ?, lease_owner = NULL, "
                        "lease_expires = NULL, updated = ?, gt_hash = ?, scored_by = ? WHERE id = ?",
                        (submission_id, now(), gt_hash, worker, job.id),
                    )
                    return "scored"
            db.execute(
                "UPDATE jobs SET status = 'failed', problems_json = ?, lease_owner = NULL, lease_expires = NULL, "
                "updated = ?, gt_hash = ?, scored_by = ? WHERE id = ?",
                (json.dumps(problems), now(), gt_hash, worker, job.id),
            )
            return "failed"

    @staticmethod
    def _duplicate(db: sqlite3.Connection, submission_id: int) -> dict[str, str]:
        earlier = db.execute("SELECT id FROM jobs WHERE submission_id = ?", (submission_id,)).fetchone()
        where = f" as #{earlier['id']}" if earlier else ""
        return {"path": ".", "message": f"your team already submitted identical predictions{where}"}

    def duplicate_problem(self, submission_id: int) -> dict[str, str]:
        """The problem a team reads when it repeats one of its own submissions (duplicates are per team)."""
        with self.reading() as db:
            return self._duplicate(db, submission_id)

    def requeue(self, job_id: int, worker: str) -> None:
        """Give a job back (a worker told to stop mid-job): the next worker starts it afresh."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL, updated = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'scoring'",
                (now(), job_id, worker),
            )

    @staticmethod
    def _job(db: sqlite3.Connection, job_id: int) -> Job | None:
        row = db.execute(f"{_JOB} WHERE j.id = ?", (job_id,)).fetchone()
        return None if row is None else Job.from_row(row)

    def job(self, job_id: int) -> Job | None:
        with self.reading() as db:
            return self._job(db, job_id)

    def jobs_for_team(self, team_id: int) -> list[Job]:
        with self.reading() as db:
            rows = db.execute(f"{_JOB} WHERE j.team_id = ? ORDER BY j.id DESC", (team_id,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def live_uploads(self) -> set[str]:
        """The upload paths of jobs still to be scored (everything else under uploads/ is litter)."""
        with self.reading() as db:
            rows = db.execute("SELECT upload FROM jobs WHERE status IN ('queued', 'scoring')").fetchall()
        return {r["upload"] for r in rows}

    def leased_jobs(self) -> set[int]:
        """Jobs a worker holds an unexpired lease on (their scratch folders are in use)."""
        with self.reading() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE status = 'scoring' AND lease_expires >= ?", (time.time(),)
            ).fetchall()
        return {int(r["id"]) for r in rows}

    def publish(self, job_id: int, team_id: int, published: bool) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET published = ?, updated = ? WHERE id = ? AND team_id = ? AND status = 'scored'",
                (int(published), now(), job_id, team_id),
            )
        return cursor.rowcount == 1

    def counts(self) -> dict[str, int]:
        with self.reading() as db:
            rows = db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        return {r["status"]: int(r["n"]) for r in rows}

    # -- moderation and the public table --------------------------------------------------------------

    def moderate(self, public_id: str, hidden: bool, reason: str) -> int:
        """Hide or unhide a row by the id every page shows (a job number, or ``ref-N`` for a reference
        run); each decision is kept with its reason. Returns the submission id."""
        if not reason.strip():
            raise ValueError("a reason is required")
        with self.transaction() as db:
            if public_id.startswith("ref-") and public_id[4:].isdigit():
                row = db.execute(
                    "SELECT s.id FROM submissions s WHERE s.id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM jobs j WHERE j.submission_id = s.id)",
                    (int(public_id[4:]),),
                ).fetchone()
            elif public_id.isdigit() and len(public_id) < 19:
                row = db.execute(
                    "SELECT submission_id AS id FROM jobs WHERE id = ? AND submission_id IS NOT NULL", (int(public_id),)
                ).fetchone()
            else:
                row = None
            if row is None:
                raise ValueError(f"no scored row {public_id!r} (give the id the table shows: 17, or ref-3)")
            db.execute(
                "INSERT INTO moderation (submission_id, hidden, reason, created) VALUES (?, ?, ?, ?)",
                (int(row["id"]), int(hidden), reason, now()),
            )
        return int(row["id"])

    @staticmethod
    def _hidden(db: sqlite3.Connection) -> set[int]:
        rows = db.execute(
            "SELECT m.submission_id, m.hidden FROM moderation m WHERE m.id = "
            "(SELECT MAX(id) FROM moderation WHERE submission_id = m.submission_id)"
        ).fetchall()
        return {int(r["submission_id"]) for r in rows if r["hidden"]}

    def hidden(self) -> set[int]:
        """Submission ids whose latest moderation decision hides them."""
        with self.reading() as db:
            return self._hidden(db)

    def public_entries(self) -> list[PublicEntry]:
        """Reference runs and published team submissions, less hidden rows (the phase's freeze and the
        team-row rule are applied above, by the board)."""
        with self.reading() as db:
            hidden = self._hidden(db)
            rows = db.execute(
                "SELECT s.id AS submission_id, s.created, s.split, j.id AS job_id, j.phase, j.published, j.created AS "
                "job_created, t.name AS team FROM submissions s LEFT JOIN jobs j ON j.submission_id = s.id "
                "LEFT JOIN teams t ON t.id = j.team_id ORDER BY s.id"
            ).fetchall()
        entries = []
        for r in rows:
            if int(r["submission_id"]) in hidden or (r["job_id"] is not None and not r["published"]):
                continue
            created = r["job_created"] or r["created"]
            entry = PublicEntry(int(r["submission_id"]), r["job_id"], r["team"], r["phase"], created, r["split"])
            entries.append(entry)
        return entries

    def revision(self) -> int:
        """Bumped (by triggers) whenever a row the public table may show changes."""
        with self.reading() as db:
            return int(db.execute("SELECT n FROM board_revision WHERE id = 1").fetchone()[0])

    # -- workers ----------------------------------------------------------------------------------

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO service_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def state(self, key: str) -> str | None:
        with self.reading() as db:
            row = db.execute("SELECT value FROM service_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def register_worker(self, name: str, host: str, pid: int, gt_hash: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO workers (name, host, pid, gt_hash, started, beat) VALUES (?, ?, ?, ?, ?, ?)",
                (name, host, pid, gt_hash, now(), time.time()),
            )

    def beat(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE workers SET beat = ? WHERE name = ?", (time.time(), name))

    def remove_worker(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM workers WHERE name = ?", (name,))

    def live_workers(self, within_seconds: float) -> list[dict[str, Any]]:
        """Workers that reported within ``within_seconds``; older registrations are dropped."""
        with self.transaction() as db:
            db.execute("DELETE FROM workers WHERE beat < ?", (time.time() - within_seconds,))
            rows = db.execute("SELECT * FROM workers ORDER BY name").fetchall()
        return [dict(r) for r in rows]


def fingerprint(hashes: dict[str, str]) -> str:
    """One hash for the ground truth a service scores with (per split hashes, in a fixed order)."""
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


__all__ = ["Database", "Job", "LimitReached", "PublicEntry", "fingerprint", "seconds_to_midnight", "today"]
