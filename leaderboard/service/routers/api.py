"""The JSON API: submissions (upload, state, publish), the public table, the phases and the team."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from mosxav.evaluation.metrics import METRIC_VERSION
from mosxav.evaluation.uncertainty import SequenceSums
from mosxav_leaderboard.board import build_table
from mosxav_leaderboard.columns import PROVENANCES
from mosxav_leaderboard.service import uploads
from mosxav_leaderboard.service.accounts import Team
from mosxav_leaderboard.service.board_view import PublicEntry, annotate, ranked_parts
from mosxav_leaderboard.service.database import Database, Job, LimitReached
from mosxav_leaderboard.service.dependencies import (
    BoardDep,
    DatabaseDep,
    OptionalTeam,
    SettingsDep,
    SignedInDep,
    WriterDep,
)
from mosxav_leaderboard.service.models import (
    Health,
    LeaderboardOut,
    PhaseOut,
    Published,
    Queued,
    SubmissionOut,
    TeamOut,
    errors,
)
from mosxav_leaderboard.service.settings import Settings

#: The header of every private answer (a team's own pages and JSON): no cache keeps it.
PRIVATE = {"Cache-Control": "no-store"}

router = APIRouter()
#: A submission number as the API accepts it: a positive SQLite integer.
SubmissionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the submission's number")]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the submission folder as .zip"},
                        "phase": {"type": "string", "enum": ["validation", "test"], "default": "test"},
                    },
                }
            }
        },
    }
}


def rows_json(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Table rows as JSON values (NaN as null)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def team_rows(database: Database, settings: Settings, jobs: list[Job], by_structure: bool) -> pd.DataFrame:
    """The scored rows of ``jobs``, with the service's columns (ranks are meaningless here: dropped)."""
    entries = {
        j.submission_id: PublicEntry(j.submission_id, j.id, j.team, j.phase, j.created, settings.phase(j.phase).split)
        for j in jobs
        if j.submission_id is not None
    }
    if not entries:
        return pd.DataFrame()
    parts = ranked_parts(settings, datetime.now(timezone.utc))  # a team sees the part the table ranks on
    table, _ = build_table(database.store, only_ids=set(entries), by_structure=by_structure, parts=parts)
    if table.empty:
        return table
    split_phases = {p.split: p.name for p in settings.phases}
    return annotate(table, entries, split_phases).drop(columns=["rank", "p_vs_leader"])


def submission_view(database: Database, settings: Settings, job: Job, owner: bool) -> SubmissionOut:
    view = SubmissionOut(
        id=job.id,
        phase=job.phase,
        status=job.status,
        created=job.created,
        updated=job.updated,
        published=job.published,
    )
    if owner:
        view.filename, view.attempts, view.problems = job.filename, job.attempts, job.problems
    if job.status == "scored" and job.submission_id is not None:
        rows = rows_json(team_rows(database, settings, [job], by_structure=True))
        view.row = rows[0] if rows else None
        if job.phase == "validation":  # its ground truth is public: per-sequence scores are fine
            score = database.store.scores(METRIC_VERSION, {job.submission_id}).get(job.submission_id)
            if score is not None:
                sums = SequenceSums.from_json(score.sequences)
                # ... of the part the table ranks on now: a private part's sequences stay private until
                # the phase closes, or a team could read its private score off them
                shown = ranked_parts(settings, datetime.now(timezone.utc)).get(settings.phase(job.phase).split)
                dice = sums.per_sequence_headline()
                view.sequences = {
                    name: float(d)
                    for name, d in zip(sums.sequences, dice, strict=True)
                    if shown is None or name in shown
                }
    return view


def usage(database: Database, settings: Settings, team: Team) -> dict[str, tuple[int, int]]:
    """Open phase -> (submissions counted today, the team's daily limit): a closed or upcoming phase has
    no quota to show."""
    now = datetime.now(timezone.utc)
    return {
        p.name: (database.used_today(team.id, p.name), database.daily_limit(team.id, p.name, p.per_day))
        for p in settings.phases
        if p.state(now) == "open"
    }


def left_today(database: Database, settings: Settings, team: Team) -> dict[str, int]:
    return {name: max(limit - used, 0) for name, (used, limit) in usage(database, settings, team).items()}


@router.get("/healthz", response_model=Health, tags=["service"])
def healthz(database: DatabaseDep) -> Health:
    return Health(status="ok", metric_version=METRIC_VERSION, jobs=database.counts())


@router.post(
    "/api/submissions",
    status_code=202,
    response_model=Queued,
    openapi_extra=UPLOAD_BODY,
    responses=errors(400, 401, 403, 413, 415, 429),
    tags=["submissions"],
)
async def upload(request: Request, signed: WriterDep, settings: SettingsDep, database: DatabaseDep) -> Queued:
    """Upload a submission (multipart: ``file`` = the folder as .zip, ``phase``); answers with its number."""
    try:
        job_id = await uploads.receive(request, signed.team, settings, database)
    except uploads.UploadRefused as exc:
        raise HTTPException(exc.status, exc.message) from None
    except LimitReached as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        raise HTTPException(429 if exc.retry_after else 403, str(exc), headers) from None
    return Queued(id=job_id)


@router.get(
    "/api/submissions/{job_id}",
    response_model=SubmissionOut,
    response_model_exclude_none=True,
    responses=errors(401, 404),
    tags=["submissions"],
)
def submission(
    job_id: SubmissionId, signed: OptionalTeam, settings: SettingsDep, database: DatabaseDep, response: Response
) -> Any:
    """A submission's state and, once scored, its row (and, to its team, the problem report)."""
    if signed is not None:
        response.headers.update(PRIVATE)  # a team's own view: never kept by a cache
    job = database.job(job_id)
    owner = job is not None and signed is not None and job.team_id == signed.team.id
    public = job is not None and job.published and job.submission_id not in database.hidden()
    if job is None or not (owner or public):
        raise HTTPException(404, f"no submission #{job_id}")
    return submission_view(database, settings, job, owner).model_dump(exclude_none=True)


@router.post(
    "/api/submissions/{job_id}/publish",
    response_model=Published,
    responses=errors(401, 403, 404, 409),
    tags=["submissions"],
)
def publish(
    job_id: SubmissionId, signed: WriterDep, settings: SettingsDep, database: DatabaseDep, published: bool = True
) -> Published:
    """Show (or, with ``published=false``, withdraw) a scored submission on the public table, while its
    phase is open: what is published when the phase closes is final."""
    return set_published(database, settings, signed.team, job_id, published)


def set_published(database: Database, settings: Settings, team: Team, job_id: int, published: bool) -> Published:
    job = database.job(job_id)
    if job is None or job.team_id != team.id:
        raise HTTPException(404, f"no submission #{job_id}")
    phase = settings.phase(job.phase)
    if phase.state(datetime.now(timezone.utc)) == "closed":
        # A team sees its private-part scores once the phase closes; choosing its row then would let it
        # pick its best private row. The organizers' rule: the rows published at the close count.
        closed = phase.closes.isoformat() if phase.closes else "before"
        raise HTTPException(409, f"the {phase.name} phase closed at {closed}: the rows published then are final")
    if not database.publish(job_id, team.id, published):
        raise HTTPException(409, f"submission #{job_id} is {job.status}; only scored ones can be published")
    return Published(id=job_id, published=published)


@router.get("/api/leaderboard", response_model=LeaderboardOut, responses=errors(400), tags=["leaderboard"])
def leaderboard(
    board: BoardDep,
    settings: SettingsDep,
    phase: str | None = None,
    labeled_fraction: float | None = None,
    provenance: str | None = None,
):
    """The public table: one ranked group per phase and labeled fraction, one row per team in each;
    ``provenance`` keeps the rows of one kind (``predictions``, ``model``, ``reference``), ranks as ranked."""
    if phase is not None and phase not in settings.phase_names:
        raise HTTPException(400, f"phase must be one of {list(settings.phase_names)}")
    if provenance is not None and provenance not in PROVENANCES:
        raise HTTPException(400, f"provenance must be one of {list(PROVENANCES)}")
    groups = []
    for g in board.groups():
        if phase is not None and g.phase != phase:
            continue
        if labeled_fraction is not None and abs(g.labeled_fraction - labeled_fraction) >= 1e-12:
            continue
        rows = g.rows if provenance is None else g.rows[g.rows["provenance"] == provenance]
        if not rows.empty:
            groups.append(
                {"phase": g.phase, "labeled_fraction": g.labeled_fraction, "part": g.part, "rows": rows_json(rows)}
            )
    return {"metric_version": METRIC_VERSION, "groups": groups}


@router.get("/api/phases", response_model=list[PhaseOut], tags=["leaderboard"])
def phases(settings: SettingsDep) -> list[PhaseOut]:
    """The challenge's phases: what each scores, its dates (UTC) and its daily limit."""
    now = datetime.now(timezone.utc)

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return [
        PhaseOut(
            name=p.name,
            split=p.split,
            state=p.state(now),
            per_day=p.per_day,
            opens=iso(p.opens),
            closes=iso(p.closes),
            freeze=iso(p.freeze),
            public_fraction=p.public_fraction,
            description=p.description,
        )
        for p in settings.phases
    ]


@router.get(
    "/api/teams/me", response_model=TeamOut, response_model_exclude_none=True, responses=errors(401), tags=["teams"]
)
async def me(signed: SignedInDep, settings: SettingsDep, database: DatabaseDep, response: Response) -> Any:
    """The signed-in team: its submissions (newest first) and what it may still submit today (private:
    ``Cache-Control: no-store``, as the /team page that reads it)."""
    response.headers.update(PRIVATE)

    def answer() -> dict[str, Any]:
        own = database.jobs_for_team(signed.team.id)
        views = [submission_view(database, settings, j, True).model_dump(exclude_none=True) for j in own]
        return {
            "team": signed.team.name,
            "left_today": left_today(database, settings, signed.team),
            "submissions": views,
        }

    return await run_in_threadpool(answer)
