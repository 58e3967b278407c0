"""The leaderboard's storage: append-only submissions and their scores, in a SQLite file or on PostgreSQL.

* ``submissions``: one row per accepted submission (metadata, prediction hash, dataset hash, where
  its predictions are kept); ``UNIQUE(prediction_hash, dataset_hash)`` detects re-submissions, even
  when two identical ones race.
* ``scores``: one row per (submission, metric version); a metric change adds rows, never edits.
* Triggers make both tables append-only (``mosxav_leaderboard.migrations``); each submission is
  written in one transaction, so a killed process leaves either the whole submission or nothing, and
  concurrent ``submit`` calls serialise on SQLite's write lock (``mosxav_leaderboard.engine``).

Predictions are kept content-addressed under ``home/predictions/<hash>``: ``home`` is the database
file's folder for SQLite, and must be given for a database server (a folder every writer shares).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, exists, insert, select, text
from sqlalchemy.exc import IntegrityError

from mosxav_leaderboard.engine import BEGIN_OPTION, database_url, open_engine, shown, sqlite_file
from mosxav_leaderboard.tables import scores, submissions


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


def predictions_home_for(db: str | Path, shared: Path | None) -> Path | None:
    """Where a store of ``db`` keeps predictions: None (beside the file) for SQLite, else the folder
    every machine shares (``--uploads``), which a database server has no file to stand beside."""
    return None if sqlite_file(db) is not None else shared


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """A leaderboard database (a SQLite file or a PostgreSQL URL) and the prediction folders it keeps.

    Args:
        db: a path (SQLite) or a URL (``postgresql://user:password@host/name``).
        home: where predictions are kept (``home/predictions/<hash>``); default: the SQLite file's
            folder. A database server has none unless given: a folder every machine that scores can
            write (reading rows and administration need none).
    """

    def __init__(self, db: str | Path, home: str | Path | None = None) -> None:
        self.url = database_url(db)
        self.path = sqlite_file(self.url)
        folder = home if home is not None else (self.path.parent if self.path is not None else None)
        self._home = None if folder is None else Path(folder)
        self._engine = (os.getpid(), open_engine(self.url))  # migrates the schema now, before anything reads it

    @property
    def engine(self) -> Engine:
        """This process's engine (a store handed across a fork opens its own pool in the child)."""
        pid, engine = self._engine
        if pid != os.getpid():
            self._engine = (os.getpid(), open_engine(self.url))
        return self._engine[1]

    def __repr__(self) -> str:
        return f"Store({shown(self.url)!r}, home={str(self._home)!r})"

    @property
    def home(self) -> Path:
        """The folder that holds ``predictions/`` (the SQLite file's, or the one given)."""
        if self._home is None:
            raise ValueError(
                f"{shown(self.url)} is a database server: give the folder its predictions are kept in "
                "(--uploads, shared by every machine that scores)"
            )
        return self._home

    @property
    def where(self) -> str:
        """The database, for messages (a file path, or the URL without its password)."""
        return str(self.path) if self.path is not None else shown(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def predictions_home(self) -> Path:
        return self.home / "predictions"

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads: one snapshot for the block on SQLite; on PostgreSQL, whose READ
        COMMITTED takes a snapshot per statement anyway, no transaction (two round trips fewer)."""
        with self.engine.connect() as db:
            if not self.is_sqlite:
                db.execution_options(isolation_level="AUTOCOMMIT")
            yield db

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: committed at the end of the block, rolled back on an exception.
        On SQLite it takes the write lock at its start (``BEGIN IMMEDIATE``)."""
        with self.engine.connect().execution_options(**{BEGIN_OPTION: "IMMEDIATE"}) as db:
            with db.begin():
                yield db

    def find_duplicate(self, prediction_hash: str, dataset_hash: str) -> int | None:
        with self.reading() as db:
            return self._duplicate_of(db, prediction_hash, dataset_hash)

    @staticmethod
    def _duplicate_of(db: Connection, prediction_hash: str, dataset_hash: str) -> int | None:
        query = select(submissions.c.id).where(
            submissions.c.prediction_hash == prediction_hash, submissions.c.dataset_hash == dataset_hash
        )
        found = db.execute(query).scalar()
        return None if found is None else int(found)

    def add_submission(self, **fields: Any) -> int:
        """Insert a submission and its first score atomically (fields: see ``insert_submission``);
        raises DuplicateSubmission."""
        with self.transaction() as db:
            return self.insert_submission(db, **fields)

    def insert_submission(
        self,
        db: Connection,
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
        provenance: str | None = None,
    ) -> int:
        """Insert a submission and its first score inside the caller's transaction (so a service can
        write its own rows in the same one); raises DuplicateSubmission, leaving the transaction usable.

        ``provenance``: ``model`` for masks a server predicted with a team's model; by default
        ``reference`` for a harness run, else ``predictions``."""
        row = {
            "created": now(),
            "method": method,
            "dataset": dataset,
            "dataset_hash": dataset_hash,
            "split": split,
            "labeled_fraction": float(labeled_fraction),
            "prediction_hash": prediction_hash,
            "predictions_dir": predictions_dir,
            "is_reference": int(is_reference),
            "meta_json": json.dumps(meta, sort_keys=True, default=str),
            "provenance": provenance or ("reference" if is_reference else "predictions"),
        }
        try:
            with db.begin_nested():
                submission_id = int(db.execute(insert(submissions).returning(submissions.c.id), row).scalar_one())
                self._insert_score(db, submission_id, score)
        except IntegrityError:
            existing = self._duplicate_of(db, prediction_hash, dataset_hash)
            if existing is None:
                raise
            raise DuplicateSubmission(existing) from None
        return submission_id

    def add_score(self, submission_id: int, score: ScoreRow) -> None:
        """A re-score under a new metric version (idempotent: an existing version is kept)."""
        with self.transaction() as db:
            present = select(
                exists().where(scores.c.submission_id == submission_id, scores.c.metric_version == score.metric_version)
            )
            if not db.execute(present).scalar():
                self._insert_score(db, submission_id, score)

    @staticmethod
    def _insert_score(db: Connection, submission_id: int, score: ScoreRow) -> None:
        row = {
            "submission_id": submission_id,
            "created": now(),
            "metric_version": score.metric_version,
            "toolkit_version": score.toolkit_version,
            "dataset_hash": score.dataset_hash,
            "summary_json": json.dumps(score.summary),
            "sequences_json": json.dumps(score.sequences),
        }
        db.execute(insert(scores), row)

    def submissions(self, ids: set[int] | None = None) -> list[dict[str, Any]]:
        """Every submission (or those in ``ids``), oldest first, with its metadata decoded."""
        query = select(submissions).order_by(submissions.c.id)
        if ids is not None:
            query = query.where(submissions.c.id.in_(sorted(int(i) for i in ids)))
        with self.reading() as db:
            rows = db.execute(query).mappings().all()
        return [{**dict(r), "meta": json.loads(r["meta_json"])} for r in rows]

    def scores(self, metric_version: str, ids: set[int] | None = None) -> dict[int, ScoreRow]:
        """Submission id -> its score under ``metric_version`` (of every submission, or those in ``ids``)."""
        query = select(scores).where(scores.c.metric_version == metric_version)
        if ids is not None:
            query = query.where(scores.c.submission_id.in_(sorted(int(i) for i in ids)))
        with self.reading() as db:
            rows = db.execute(query).mappings().all()
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
        """SQLite's own page-level check; a database server keeps its own integrity (always True)."""
        if not self.is_sqlite:
            return True
        with self.reading() as db:
            return db.execute(text("PRAGMA integrity_check")).scalar() == "ok"
