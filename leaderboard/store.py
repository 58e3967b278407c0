"""The leaderboard's storage: one SQLite file (stdlib ``sqlite3``) in WAL mode, append-only.

* ``submissions``: one row per accepted submission (metadata, prediction hash, dataset hash, where
  its predictions are kept); ``UNIQUE(prediction_hash, dataset_hash)`` detects re-submissions, even
  when two identical ones race.
* ``scores``: one row per (submission, metric version); a metric change adds rows, never edits.
* Triggers make both tables append-only; each submission is written in one ``BEGIN IMMEDIATE``
  transaction, so concurrent ``submit`` calls serialise on the write lock (busy timeout 60 s) and a
  killed process leaves either the whole submission or nothing (WAL, ``synchronous=FULL``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    method TEXT NOT NULL,
    dataset TEXT NOT NULL,
    dataset_hash TEXT NOT NULL,
    split TEXT NOT NULL,
    labeled_fraction REAL NOT NULL,
    prediction_hash TEXT NOT NULL,
    predictions_dir TEXT NOT NULL,
    is_reference INTEGER NOT NULL DEFAULT 0,
    meta_json TEXT NOT NULL,
    UNIQUE (prediction_hash, dataset_hash)
);
CREATE TABLE IF NOT EXISTS scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    created TEXT NOT NULL,
    metric_version TEXT NOT NULL,
    toolkit_version TEXT NOT NULL,
    dataset_hash TEXT NOT NULL,
    summary_json TEXT NOT NULL,
    sequences_json TEXT NOT NULL,
    UNIQUE (submission_id, metric_version)
);
CREATE TRIGGER IF NOT EXISTS submissions_append_only_u BEFORE UPDATE ON submissions
    BEGIN SELECT RAISE(ABORT, 'the leaderboard is append-only'); END;
CREATE TRIGGER IF NOT EXISTS submissions_append_only_d BEFORE DELETE ON submissions
    BEGIN SELECT RAISE(ABORT, 'the leaderboard is append-only'); END;
CREATE TRIGGER IF NOT EXISTS scores_append_only_u BEFORE UPDATE ON scores
    BEGIN SELECT RAISE(ABORT, 'the leaderboard is append-only'); END;
CREATE TRIGGER IF NOT EXISTS scores_append_only_d BEFORE DELETE ON scores
    BEGIN SELECT RAISE(ABORT, 'the leaderboard is append-only'); END;
"""


class DuplicateSubmission(Exception):
    def __init__(self, existing_id: int) -> None:
        self.existing_id = existing_id
        super().__init__(f"identical predictions were already submitted as #{existing_id}")


@dataclass
class ScoreRow:
    submission_id: int
    metric_version: str
    toolkit_version: str
    dataset_hash: str
    summary: dict[str, Any]
    sequences: dict[str, Any]


def _only(ids: set[int] | None, column: str, joiner: str = "WHERE") -> str:
    """A SQL filter on integer ids (formatted from ints only, so nothing from outside reaches SQL)."""
    if ids is None:
        return ""
    return f" {joiner} {column} IN ({','.join(str(int(i)) for i in sorted(ids)) or 'NULL'})"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """A leaderboard database file and the content-addressed prediction folders beside it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self.reading() as db:
            db.executescript(SCHEMA)

    @property
    def predictions_home(self) -> Path:
        return self.path.parent / "predictions"

    def connect(self) -> sqlite3.Connection:
        """This thread's connection, opened once per thread and process (opening a connection and
        setting its pragmas cost more than the statements a request runs; one made before a fork is
        never used after it)."""
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            return db
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.row_factory = sqlite3.Row
        self._local.db, self._local.pid = db, os.getpid()
        return db

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local.db = None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        yield self.connect()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def find_duplicate(self, prediction_hash: str, dataset_hash: str) -> int | None:
        with self.reading() as db:
            row = db.execute(
                "SELECT id FROM submissions WHERE prediction_hash = ? AND dataset_hash = ?",
                (prediction_hash, dataset_hash),
            ).fetchone()
        return int(row["id"]) if row else None

    def add_submission(self, **fields: Any) -> int:
        """Insert a submission and its first score atomically (fields: see ``insert_submission``);
        raises DuplicateSubmission."""
        with self.transaction() as db:
            return self.insert_submission(db, **fields)

    def insert_submission(
        self,
        db: sqlite3.Connection,
        *,
        method: str,
        dataset: str,
        dataset_hash: str,
        split: str,
        labeled_fraction: float,
        prediction_hash: str,
        predictions_dir: str,
        is_reference: bool,
        meta: dict[str, Any],
        score: ScoreRow,
    ) -> int:
        """Insert a submission and its first score inside the caller's transaction (so a service can
        write its own rows in the same one); raises DuplicateSubmission, leaving the transaction usable."""
        db.execute("SAVEPOINT add_submission")
        try:
            cursor = db.execute(
                "INSERT INTO submissions (created, method, dataset, dataset_hash, split, labeled_fraction, "
                "prediction_hash, predictions_dir, is_reference, meta_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now(),
                    method,
                    dataset,
                    dataset_hash,
                    split,
                    float(labeled_fraction),
                    prediction_hash,
                    predictions_dir,
                    int(is_reference),
                    json.dumps(meta, sort_keys=True, default=str),
                ),
            )
            submission_id = int(cursor.lastrowid)
            self._insert_score(db, submission_id, score)
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK TO add_submission")
            db.execute("RELEASE add_submission")
            if "UNIQUE" in str(exc) and "prediction_hash" in str(exc):
                row = db.execute(
                    "SELECT id FROM submissions WHERE prediction_hash = ? AND dataset_hash = ?",
                    (prediction_hash, dataset_hash),
                ).fetchone()
                raise DuplicateSubmission(int(row["id"]) if row else -1) from None
            raise
        db.execute("RELEASE add_submission")
        return submission_id

    def add_score(self, submission_id: int, score: ScoreRow) -> None:
        """A re-score under a new metric version (idempotent: an existing version is kept)."""
        with self.transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM scores WHERE submission_id = ? AND metric_version = ?",
                (submission_id, score.metric_version),
            ).fetchone()
            if not exists:
                self._insert_score(db, submission_id, score)

    @staticmethod
    def _insert_score(db: sqlite3.Connection, submission_id: int, score: ScoreRow) -> None:
        db.execute(
            "INSERT INTO scores (submission_id, created, metric_version, toolkit_version, dataset_hash, summary_json, "
            "sequences_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                submission_id,
                now(),
                score.metric_version,
                score.toolkit_version,
                score.dataset_hash,
                json.dumps(score.summary),
                json.dumps(score.sequences),
            ),
        )

    def submissions(self, ids: set[int] | None = None) -> list[dict[str, Any]]:
        """Every submission (or those in ``ids``), oldest first, with its metadata decoded."""
        with self.reading() as db:
            rows = db.execute(f"SELECT * FROM submissions{_only(ids, 'id')} ORDER BY id").fetchall()
        return [{**dict(r), "meta": json.loads(r["meta_json"])} for r in rows]

    def scores(self, metric_version: str, ids: set[int] | None = None) -> dict[int, ScoreRow]:
        """Submission id -> its score under ``metric_version`` (of every submission, or those in ``ids``)."""
        with self.reading() as db:
            rows = db.execute(
                f"SELECT * FROM scores WHERE metric_version = ?{_only(ids, 'submission_id', 'AND')}", (metric_version,)
            ).fetchall()
        return {
            int(r["submission_id"]): ScoreRow(
                int(r["submission_id"]),
                r["metric_version"],
                r["toolkit_version"],
                r["dataset_hash"],
                json.loads(r["summary_json"]),
                json.loads(r["sequences_json"]),
            )
            for r in rows
        }

    def integrity_ok(self) -> bool:
        with self.reading() as db:
            return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
