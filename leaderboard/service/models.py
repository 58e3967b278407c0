"""The API's request and response bodies as pydantic models: what ``/openapi.json`` describes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str = Field(description="what was wrong, in one sentence")


class ProblemOut(BaseModel):
    path: str = Field(description="the file inside the submission")
    message: str


class SubmissionOut(BaseModel):
    """A submission's state; the owner also sees its file, attempts and problem report."""

    id: int = Field(description="the submission's number: the id every page and command uses")
    phase: str
    status: Literal["queued", "scoring", "scored", "failed"]
    created: str
    updated: str
    published: bool
    filename: str | None = None
    attempts: int | None = None
    problems: list[ProblemOut] | None = None
    row: dict[str, Any] | None = Field(default=None, description="the table row, once scored")
    sequences: dict[str, float] | None = Field(
        default=None, description="per-sequence Dice (validation phase only: its ground truth is public)"
    )


class Queued(BaseModel):
    id: int
    status: Literal["queued"] = "queued"


class Published(BaseModel):
    id: int
    published: bool


class GroupOut(BaseModel):
    phase: str
    labeled_fraction: float
    part: Literal["public", "private"] | None = Field(
        default=None, description="the part of the split ranked (phases with a public/private split)"
    )
    rows: list[dict[str, Any]]


class LeaderboardOut(BaseModel):
    metric_version: str
    groups: list[GroupOut]


class PhaseOut(BaseModel):
    name: str
    split: str
    state: Literal["upcoming", "open", "closed"]
    per_day: int
    opens: str | None
    closes: str | None
    freeze: str | None
    public_fraction: float | None = None
    description: str


class TeamOut(BaseModel):
    team: str
    left_today: dict[str, int] = Field(description="submissions left today (UTC) per phase")
    submissions: list[SubmissionOut]


class Health(BaseModel):
    status: Literal["ok"]
    metric_version: str
    jobs: dict[str, int]


#: The 4xx answers the API documents (every one carries ``ErrorBody``).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed request"},
    401: {"model": ErrorBody, "description": "missing, unknown or revoked token (or session)"},
    403: {"model": ErrorBody, "description": "CSRF token missing, or the phase is not open"},
    404: {"model": ErrorBody, "description": "no such submission (or another team's private one)"},
    409: {"model": ErrorBody, "description": "the submission is not in a state that allows this"},
    413: {"model": ErrorBody, "description": "upload over the size limit"},
    415: {"model": ErrorBody, "description": "not multipart/form-data, or the file is not a .zip"},
    429: {"model": ErrorBody, "description": "daily limit reached (see Retry-After)"},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in codes}
