"""The service's data layer: the one module that runs the service's statements (SQLAlchemy Core).

The tables (``mosxav_leaderboard.tables``, made by the migrations) live in the leaderboard database
beside the store's ``submissions`` and ``scores``: teams and their token hashes, server-side
sessions, per-team limits, the job queue, moderation decisions, the registry of worker processes,
and a revision counter that triggers bump whenever anything the public table shows changes (so a
page is recomputed only then). The same statements run on SQLite (one machine) and PostgreSQL
(workers on several machines); where the two differ, this module says how each holds the guarantees:

* the daily limit: counting today's uploads and inserting the new one happen in one transaction that
  first locks the team's row (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` takes the
  whole database), so concurrent uploads of a team serialise and nobody gets past the limit;
* claiming: a worker takes the oldest job that is queued, or scoring with an expired lease, and
  writes its name and a lease deadline; ``FOR UPDATE SKIP LOCKED`` lets workers on PostgreSQL claim
  side by side without waiting on each other or taking the same job; a job whose workers died
  ``max_attempts`` times fails;
* exactly once: a job's result (the submission row, its score, ``status = 'scored'``) is written in
  one transaction that first locks the job and checks the worker still holds the lease;
  ``jobs.submission_id`` is UNIQUE.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from mosxav_leaderboard.service.accounts import MAX_QUEUED, Team, new_token, normalise_team_name, token_hash
from mosxav_leaderboard.service.confusable import skeletons
from mosxav_leaderboard.store import DuplicateSubmission, Store, now
from mosxav_leaderboard.tables import (
    board_revision,
    jobs,
    limits,
    moderation,
    service_state,
    sessions,
    submissions,
    teams,
    workers,
)

#: A job counts against the daily limit unless it failed without running anything: a submission
#: refused at the door costs no slot, a model that ran (and used the workers) does, whatever its outcome.
COUNTED = or_(jobs.c.status != "failed", jobs.c.ran == 1)


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
    kind: str
    ran: bool = False
    compute_seconds: float = 0.0

    @classmethod
    def from_row(cls, row: RowMapping) -> Job:
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
            submission_id=None if row["submission_id"] is None else int(row["submission_id"]),
            published=bool(row["published"]),
            lease_owner=row["lease_owner"],
            gt_hash=row["gt_hash"],
            kind=row["kind"],
            ran=bool(row["ran"]),
            compute_seconds=float(row["compute_seconds"]),
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


#: A job with its team's name.
_JOB = select(jobs, teams.c.name.label("team")).join(teams, teams.c.id == jobs.c.team_id)


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def seconds_to_midnight() -> int:
    moment = datetime.now(timezone.utc)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - moment).total_seconds()) + 1)


def _int_id(value: str) -> int | None:
    """A decimal id within a 64-bit key, or None."""
    return int(value) if value.isdigit() and len(value) < 19 else None


class Database:
    """The service's statements over one leaderboard database (a SQLite file or a PostgreSQL URL).

    Args:
        db: a path (SQLite) or a URL (``postgresql://user:password@host/name``).
        home: where the store keeps scored predictions (see ``Store``; required for a server).
    """

    def __init__(self, db: str | Path, home: str | Path | None = None) -> None:
        self.store = Store(db, home)
        # Writers of one process queue on a lock first on SQLite: its busy handler sleeps in growing
        # steps (up to 100 ms) while another connection holds the write lock, which put a 400 ms tail
        # on uploads acknowledged at once; other processes still meet it. PostgreSQL locks rows.
        self._write_lock = threading.Lock() if self.store.is_sqlite else nullcontext()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.store.reading() as db:
            yield db

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (see the module docstring for how each backend serialises)."""
        with self._write_lock, self.store.transaction() as db:
            yield db

    def _upsert(self, db: Connection, table: Any, values: dict[str, Any], keys: list[str], update: list[str]) -> None:
        """Insert a row, or update ``update`` of the row with the same ``keys`` (each dialect's ON CONFLICT)."""
        dialect_insert = sqlite_insert if self.store.is_sqlite else postgresql_insert
        statement = dialect_insert(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in update}
        )
        db.execute(statement)

    # -- teams and tokens ---------------------------------------------------------------------------

    def add_team(self, name: str) -> tuple[Team, str]:
        """A new team and its token (the only time the token exists in clear)."""
        name = normalise_team_name(name)
        token = new_token()
        refused = ValueError(f"team {name!r} exists already")
        with self.transaction() as db:
            taken = db.execute(select(teams.c.id).where(func.lower(teams.c.name) == func.lower(name))).first()
            if taken:
                raise refused
            alike = skeletons(name)
            for (other,) in db.execute(select(teams.c.name)):
                if skeletons(other) & alike:  # Team С (Cyrillic) beside Team C: one could pass for the other
                    raise ValueError(
                        f"team {name!r} looks like the existing team {other!r} (Unicode TS #39): choose another"
                    )
            try:
                with db.begin_nested():  # two servers adding the same name: the folded-name index refuses one
                    row = {"name": name, "token_hash": token_hash(token), "created": now()}
                    team_id = db.execute(insert(teams).returning(teams.c.id), row).scalar_one()
            except IntegrityError:
                raise refused from None
        return Team(int(team_id), name, False), token

    def rotate_token(self, name: str) -> str:
        """Revoke a team's token and sessions and give it a new token."""
        token = new_token()
        with self.transaction() as db:
            team_id = self._team_id(db, name)
            db.execute(update(teams).where(teams.c.id == team_id).values(token_hash=token_hash(token), revoked=0))
            db.execute(delete(sessions).where(sessions.c.team_id == team_id))
        return token

    def revoke(self, name: str) -> None:
        """Revoke a team's token and end its sessions: it can no longer write or sign in."""
        with self.transaction() as db:
            team_id = self._team_id(db, name)
            db.execute(update(teams).where(teams.c.id == team_id).values(revoked=1))
            db.execute(delete(sessions).where(sessions.c.team_id == team_id))

    @staticmethod
    def _team_id(db: Connection, name: str) -> int:
        team_id = db.execute(select(teams.c.id).where(teams.c.name == name)).scalar()
        if team_id is None:
            raise ValueError(f"no team {name!r}")
        return int(team_id)

    def team_for_token(self, token: str) -> Team | None:
        query = select(teams.c.id, teams.c.name, teams.c.revoked).where(teams.c.token_hash == token_hash(token))
        with self.reading() as db:
            row = db.execute(query).first()
        if row is None or row.revoked:
            return None
        return Team(int(row.id), row.name, False)

    def list_teams(self) -> list[dict[str, Any]]:
        submitted = select(func.count()).where(jobs.c.team_id == teams.c.id).scalar_subquery()
        query = select(teams.c.id, teams.c.name, teams.c.created, teams.c.revoked, submitted.label("submissions"))
        with self.reading() as db:
            rows = db.execute(query.order_by(teams.c.id)).mappings().all()
        return [dict(r) for r in rows]

    # -- sessions (server-side: signing out ends them) ------------------------------------------------

    def open_session(self, team: Team, hours: float) -> str:
        """A new session for ``team``; returns the cookie value (only its hash is stored)."""
        value = secrets.token_urlsafe(32)
        row = {
            "id_hash": token_hash(value),
            "team_id": team.id,
            "csrf": secrets.token_hex(16),
            "created": now(),
            "expires": time.time() + hours * 3600,
        }
        with self.transaction() as db:
            db.execute(delete(sessions).where(sessions.c.expires < time.time()))
            db.execute(insert(sessions), row)
        return value

    def session(self, value: str | None) -> tuple[Team, str] | None:
        """The signed-in team and the session's CSRF token, or None (unknown, expired, revoked)."""
        if not value or len(value) > 100:
            return None
        query = (
            select(teams.c.id, teams.c.name, teams.c.revoked, sessions.c.csrf, sessions.c.expires)
            .join(teams, teams.c.id == sessions.c.team_id)
            .where(sessions.c.id_hash == token_hash(value))
        )
        with self.reading() as db:
            row = db.execute(query).first()
        if row is None or row.revoked or row.expires < time.time():
            return None
        return Team(int(row.id), row.name, False), row.csrf

    def close_session(self, value: str) -> None:
        with self.transaction() as db:
            db.execute(delete(sessions).where(sessions.c.id_hash == token_hash(value)))

    # -- limits and the queue -----------------------------------------------------------------------

    def set_limit(self, name: str, phase: str, per_day: int) -> None:
        if per_day < 0:
            raise ValueError("the limit must be >= 0")
        with self.transaction() as db:
            values = {"team_id": self._team_id(db, name), "phase": phase, "per_day": per_day}
            self._upsert(db, limits, values, keys=["team_id", "phase"], update=["per_day"])

    @staticmethod
    def _limit(db: Connection, team_id: int, phase: str, default: int) -> int:
        query = select(limits.c.per_day).where(limits.c.team_id == team_id, limits.c.phase == phase)
        per_day = db.execute(query).scalar()
        return default if per_day is None else int(per_day)

    def daily_limit(self, team_id: int, phase: str, default: int) -> int:
        with self.reading() as db:
            return self._limit(db, team_id, phase, default)

    @staticmethod
    def _used(db: Connection, team_id: int, phase: str, day: str) -> int:
        query = select(func.count()).where(jobs.c.team_id == team_id, jobs.c.phase == phase, jobs.c.day == day, COUNTED)
        return int(db.execute(query).scalar_one())

    def used_today(self, team_id: int, phase: str) -> int:
        with self.reading() as db:
            return self._used(db, team_id, phase, today())

    def enqueue(
        self,
        team: Team,
        phase: str,
        default_limit: int,
        upload: str,
        filename: str,
        kind: str = "predictions",
        max_queued: int = MAX_QUEUED,
    ) -> int:
        """Queue a job if the team is under its daily limit for the phase and has fewer than ``max_queued``
        jobs waiting or being scored; raises ``LimitReached``."""
        day = today()
        with self.transaction() as db:
            # The team's uploads queue here (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialised them).
            db.execute(select(teams.c.id).where(teams.c.id == team.id).with_for_update())
            per_day = self._limit(db, team.id, phase, default_limit)
            if per_day == 0:
                raise LimitReached(f"team {team.name!r} may not submit to the {phase} phase (limit set to 0)", None)
            if self._used(db, team.id, phase, day) >= per_day:
                raise LimitReached(
                    f"daily limit reached: {per_day} submission(s) per UTC day on the {phase} phase; "
                    "submissions refused before running do not count, models that ran do",
                    seconds_to_midnight(),
                )
            waiting = select(func.count()).where(jobs.c.team_id == team.id, jobs.c.status.in_(("queued", "scoring")))
            if int(db.execute(waiting).scalar_one()) >= max_queued:
                raise LimitReached(
                    f"{max_queued} of your team's submissions are already waiting or being scored: "
                    "send the next when one is done (every team's jobs take turns)",
                    30,
                )
            stamp = now()
            row = {
                "team_id": team.id,
                "phase": phase,
                "day": day,
                "created": stamp,
                "updated": stamp,
                "upload": upload,
                "filename": filename,
                "status": "queued",
                "kind": kind,
            }
            return int(db.execute(insert(jobs).returning(jobs.c.id), row).scalar_one())

    def claim(self, worker: str, lease: float, max_attempts: int) -> Job | None:
        """Take the next job, teams in turn: among queued jobs (and those whose lease ran out), the one of
        the team with the fewest jobs being scored now, then the least CPU time used today, then the
        oldest. A team that queues many jobs, or whose models are slow, cannot hold the workers while
        others wait. Jobs out of attempts fail first."""
        moment = time.time()
        stale = and_(jobs.c.status == "scoring", jobs.c.lease_expires < moment)
        problem = json.dumps(
            [{"path": ".", "message": f"scoring was interrupted {max_attempts} times; the operators were told"}]
        )
        released = {"lease_owner": None, "lease_expires": None, "updated": now()}
        with self.transaction() as db:
            exhausted = (
                select(jobs.c.id).where(stale, jobs.c.attempts >= max_attempts).with_for_update(skip_locked=True)
            )
            db.execute(
                update(jobs).where(jobs.c.id.in_(exhausted)).values(status="failed", problems_json=problem, **released)
            )
            others = jobs.alias("others")
            running = (
                select(func.count())
                .where(others.c.team_id == jobs.c.team_id, others.c.status == "scoring", others.c.id != jobs.c.id)
                .scalar_subquery()
            )
            spent = (
                select(func.coalesce(func.sum(others.c.compute_seconds), 0.0))
                .where(others.c.team_id == jobs.c.team_id, others.c.day == today())
                .scalar_subquery()
            )
            oldest = (
                select(jobs.c.id)
                .where(or_(jobs.c.status == "queued", stale))
                .order_by(running, spent, jobs.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            job_id = db.execute(
                update(jobs)
                .where(jobs.c.id == oldest.scalar_subquery())
                .values(
                    status="scoring",
                    lease_owner=worker,
                    lease_expires=moment + lease,
                    attempts=jobs.c.attempts + 1,
                    updated=now(),
                )
                .returning(jobs.c.id)
            ).scalar()
            return None if job_id is None else self._job(db, int(job_id))

    def extend_lease(
        self, job_id: int, worker: str, lease: float, compute_seconds: float | None = None, ran: bool = False
    ) -> bool:
        """Extend ``worker``'s lease on the job (False: it lost it), recording the compute the job has used
        so far, so that a worker killed mid-job leaves its attempt counted."""
        values: dict[str, Any] = {"lease_expires": time.time() + lease}
        if compute_seconds is not None:
            values["compute_seconds"] = compute_seconds
        if ran:
            values["ran"] = 1
        with self.transaction() as db:
            result = db.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "scoring", jobs.c.lease_owner == worker)
                .values(**values)
            )
        return result.rowcount == 1

    def record_result(
        self,
        job: Job,
        worker: str,
        gt_hash: str,
        fields: dict[str, Any] | None,
        problems: list[dict[str, str]],
        ran: bool = False,
        compute_seconds: float = 0.0,
    ) -> str:
        """Enter a job's outcome if ``worker`` still holds its lease: the scored row (``fields``, the
        keyword arguments of ``Store.insert_submission``) or the problems, and whether a model ran and
        its CPU seconds. Returns the job's status, or ``lost-lease``."""
        finished = {
            "lease_owner": None,
            "lease_expires": None,
            "updated": now(),
            "gt_hash": gt_hash,
            "scored_by": worker,
            "ran": int(ran),
            "compute_seconds": compute_seconds,
        }
        with self.transaction() as db:
            holder = select(jobs.c.status, jobs.c.lease_owner).where(jobs.c.id == job.id).with_for_update()
            row = db.execute(holder).first()
            if row is None or row.status != "scoring" or row.lease_owner != worker:
                return "lost-lease"
            if fields is not None:
                try:
                    submission_id = self.store.insert_submission(db, **fields)
                except DuplicateSubmission as exc:
                    problems = [self._duplicate(db, exc.existing_id)]
                else:
                    values = {"status": "scored", "submission_id": submission_id, **finished}
                    db.execute(update(jobs).where(jobs.c.id == job.id).values(**values))
                    return "scored"
            values = {"status": "failed", "problems_json": json.dumps(problems), **finished}
            db.execute(update(jobs).where(jobs.c.id == job.id).values(**values))
            return "failed"

    @staticmethod
    def _duplicate(db: Connection, submission_id: int) -> dict[str, str]:
        earlier = db.execute(select(jobs.c.id).where(jobs.c.submission_id == submission_id)).scalar()
        where = f" as #{earlier}" if earlier is not None else ""
        return {"path": ".", "message": f"your team already submitted identical predictions{where}"}

    def duplicate_problem(self, submission_id: int) -> dict[str, str]:
        """The problem a team reads when it repeats one of its own submissions (duplicates are per team)."""
        with self.reading() as db:
            return self._duplicate(db, submission_id)

    def requeue(self, job_id: int, worker: str) -> None:
        """Give a job back (a worker told to stop mid-job): the next worker starts it afresh."""
        with self.transaction() as db:
            db.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.lease_owner == worker, jobs.c.status == "scoring")
                .values(status="queued", lease_owner=None, lease_expires=None, updated=now())
            )

    @staticmethod
    def _job(db: Connection, job_id: int) -> Job | None:
        row = db.execute(_JOB.where(jobs.c.id == job_id)).mappings().first()
        return None if row is None else Job.from_row(row)

    def job(self, job_id: int) -> Job | None:
        with self.reading() as db:
            return self._job(db, job_id)

    def jobs_for_team(self, team_id: int) -> list[Job]:
        with self.reading() as db:
            rows = db.execute(_JOB.where(jobs.c.team_id == team_id).order_by(jobs.c.id.desc())).mappings().all()
        return [Job.from_row(r) for r in rows]

    def live_uploads(self) -> set[str]:
        """The upload paths of jobs still to be scored (everything else in the uploads folder is litter)."""
        with self.reading() as db:
            rows = db.execute(select(jobs.c.upload).where(jobs.c.status.in_(("queued", "scoring")))).scalars()
            return set(rows)

    def leased_jobs(self) -> set[int]:
        """Jobs a worker holds an unexpired lease on (their scratch folders are in use)."""
        query = select(jobs.c.id).where(jobs.c.status == "scoring", jobs.c.lease_expires >= time.time())
        with self.reading() as db:
            return {int(i) for i in db.execute(query).scalars()}

    def publish(self, job_id: int, team_id: int, published: bool) -> bool:
        with self.transaction() as db:
            result = db.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.team_id == team_id, jobs.c.status == "scored")
                .values(published=int(published), updated=now())
            )
        return result.rowcount == 1

    def counts(self) -> dict[str, int]:
        query = select(jobs.c.status, func.count().label("n")).group_by(jobs.c.status)
        with self.reading() as db:
            return {r.status: int(r.n) for r in db.execute(query)}

    # -- moderation and the public table --------------------------------------------------------------

    def moderate(self, public_id: str, hidden: bool, reason: str) -> int:
        """Hide or unhide a row by the id every page shows (a job number, or ``ref-N`` for a reference
        run); each decision is kept with its reason. Returns the submission id."""
        if not reason.strip():
            raise ValueError("a reason is required")
        with self.transaction() as db:
            submission_id = None
            reference = _int_id(public_id[4:]) if public_id.startswith("ref-") else None
            job_id = _int_id(public_id)
            if reference is not None:
                has_job = select(jobs.c.id).where(jobs.c.submission_id == submissions.c.id).exists()
                query = select(submissions.c.id).where(submissions.c.id == reference, ~has_job)
                submission_id = db.execute(query).scalar()
            elif job_id is not None:
                query = select(jobs.c.submission_id).where(jobs.c.id == job_id)
                submission_id = db.execute(query).scalar()
            if submission_id is None:
                raise ValueError(f"no scored row {public_id!r} (give the id the table shows: 17, or ref-3)")
            row = {"submission_id": submission_id, "hidden": int(hidden), "reason": reason, "created": now()}
            db.execute(insert(moderation), row)
        return int(submission_id)

    @staticmethod
    def _hidden(db: Connection) -> set[int]:
        latest = select(func.max(moderation.c.id)).group_by(moderation.c.submission_id)
        query = select(moderation.c.submission_id).where(moderation.c.id.in_(latest), moderation.c.hidden != 0)
        return {int(i) for i in db.execute(query).scalars()}

    def hidden(self) -> set[int]:
        """Submission ids whose latest moderation decision hides them."""
        with self.reading() as db:
            return self._hidden(db)

    def public_entries(self) -> list[PublicEntry]:
        """Reference runs and published team submissions, less hidden rows (the phase's freeze and the
        team-row rule are applied above, by the board)."""
        query = (
            select(
                submissions.c.id.label("submission_id"),
                submissions.c.created,
                submissions.c.split,
                jobs.c.id.label("job_id"),
                jobs.c.phase,
                jobs.c.published,
                jobs.c.created.label("job_created"),
                teams.c.name.label("team"),
            )
            .select_from(submissions)
            .outerjoin(jobs, jobs.c.submission_id == submissions.c.id)
            .outerjoin(teams, teams.c.id == jobs.c.team_id)
            .order_by(submissions.c.id)
        )
        with self.reading() as db:
            hidden = self._hidden(db)
            rows = db.execute(query).all()
        entries = []
        for r in rows:
            if int(r.submission_id) in hidden or (r.job_id is not None and not r.published):
                continue
            job_id = None if r.job_id is None else int(r.job_id)
            created = r.job_created or r.created
            entries.append(PublicEntry(int(r.submission_id), job_id, r.team, r.phase, created, r.split))
        return entries

    def revision(self) -> int:
        """Bumped (by triggers) whenever a row the public table may show changes."""
        with self.reading() as db:
            return int(db.execute(select(board_revision.c.n).where(board_revision.c.id == 1)).scalar_one())

    # -- workers ----------------------------------------------------------------------------------

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as db:
            self._upsert(db, service_state, {"key": key, "value": value}, keys=["key"], update=["value"])

    def state(self, key: str) -> str | None:
        with self.reading() as db:
            return db.execute(select(service_state.c.value).where(service_state.c.key == key)).scalar()

    def register_worker(self, name: str, host: str, pid: int, gt_hash: str) -> None:
        row = {"name": name, "host": host, "pid": pid, "gt_hash": gt_hash, "started": now(), "beat": time.time()}
        with self.transaction() as db:
            db.execute(insert(workers), row)

    def beat(self, name: str) -> None:
        with self.transaction() as db:
            db.execute(update(workers).where(workers.c.name == name).values(beat=time.time()))

    def remove_worker(self, name: str) -> None:
        with self.transaction() as db:
            db.execute(delete(workers).where(workers.c.name == name))

    def live_workers(self, within_seconds: float) -> list[dict[str, Any]]:
        """Workers that reported within ``within_seconds``; older registrations are dropped."""
        with self.transaction() as db:
            db.execute(delete(workers).where(workers.c.beat < time.time() - within_seconds))
            rows = db.execute(select(workers).order_by(workers.c.name)).mappings().all()
        return [dict(r) for r in rows]


def fingerprint(hashes: dict[str, str]) -> str:
    """One hash for the ground truth a service scores with (per split hashes, in a fixed order)."""
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


__all__ = ["Database", "Job", "LimitReached", "PublicEntry", "fingerprint", "seconds_to_midnight", "today"]
