"""The service's one settings object: made once by ``mosxav-bench serve`` (or a test), frozen, and
handed to the app, the routes (through ``Depends``) and every worker process.

Phases come from the organizer's ``phases.yaml`` (``--phases``), read with ``yaml.safe_load``; without
it the service runs the two open-ended phases of the benchmark (validation with public ground truth,
test with hidden ground truth).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mosxav.data.files import read_yaml
from mosxav.errors import DataError
from mosxav_leaderboard.engine import sqlite_file
from mosxav_leaderboard.model_runs import ModelPolicy
from mosxav_leaderboard.service.accounts import MAX_QUEUED
from mosxav_leaderboard.store import predictions_home_for

PHASE_NAMES = ("validation", "test")
#: The labeled fractions of the benchmark's partitions (configs/paper.yaml) plus 0 (no labels: the
#: unsupervised baselines) and 1 (every annotated frame: the fully supervised bound).
BENCHMARK_FRACTIONS = (0.0, 0.05, 0.1, 0.25, 1.0)
DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class Phase:
    """One phase of the challenge: the split it scores, its daily limit and its dates (UTC).

    With ``public_fraction`` the split has a public part, ranked while the phase runs, and a private
    part (the rest), whose ranking is the one revealed when it closes (teams see their public-part
    scores only until then).

    Before ``opens`` and after ``closes`` uploads are refused with the date. From ``freeze`` to
    ``closes`` the public table keeps showing what it showed at the freeze: rows submitted after it
    are scored for their team but appear publicly only when the phase closes.
    """

    name: Literal["validation", "test"]
    split: str
    per_day: int
    description: str = ""
    opens: datetime | None = None
    closes: datetime | None = None
    freeze: datetime | None = None
    public_fraction: float | None = None
    #: whether the phase takes model submissions (when the service runs any: ``Settings.models``)
    models: bool = True

    def part(self, now: datetime) -> Literal["public", "private"] | None:
        """Which part of the split the table ranks on now: the public part while the phase runs, the
        private part (the rest) once it closed; None when the phase has no public/private split."""
        if self.public_fraction is None:
            return None
        return "private" if self.state(now) == "closed" else "public"

    def sequences(self, names: list[str], part: Literal["public", "private"]) -> frozenset[str]:
        """The sequences of ``part``: a fixed choice (by a hash of each name, so adding no submission and
        no restart changes it) of ``public_fraction`` of the split, at least one on each side."""
        ranked = sorted(names, key=lambda n: hashlib.sha256(f"mosxav-public:{n}".encode()).hexdigest())
        k = min(max(1, round(self.public_fraction * len(names))), len(names) - 1) if self.public_fraction else 0
        public = frozenset(ranked[:k])
        return public if part == "public" else frozenset(names) - public

    def state(self, now: datetime) -> Literal["upcoming", "open", "closed"]:
        if self.opens is not None and now < self.opens:
            return "upcoming"
        if self.closes is not None and now >= self.closes:
            return "closed"
        return "open"

    def hides(self, submitted: datetime, now: datetime) -> bool:
        """Whether a row submitted at ``submitted`` stays off the public table at ``now`` (the freeze)."""
        if self.freeze is None or submitted < self.freeze:
            return False
        return self.closes is None or now < self.closes


DEFAULT_PHASES = (
    Phase(
        "validation",
        "val",
        20,
        "Scored on the validation split, whose ground truth is public: per-sequence "
        "scores are returned, for development.",
    ),
    Phase("test", "test", 5, "Scored on the hidden test split: the aggregate row only, a few times a day."),
)


def _when(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise DataError(where, f"{value!r} is not an ISO date or date-time") from None
    else:
        moment = datetime.fromisoformat(str(value))  # a bare YAML date
    # held in UTC: a close written with an offset (+14:00) is shown, compared and stored as UTC
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _moment(value: Any, path: Path, key: str, phase: Phase) -> Any:
    """A close or freeze must name its time: a bare date would mean 00:00 UTC, the start of that day,
    which organizers writing ``closes: 2027-03-31`` rarely mean."""
    bare = isinstance(value, date) and not isinstance(value, datetime)
    if isinstance(value, str):  # the value's form, not the string's length: 20270331 is a date too
        bare = not re.search(r"[Tt ]\s*\d", value.strip())
    if bare:
        raise DataError(
            path,
            f"{phase.name}.{key}: {value} is a date without a time (it would mean 00:00 UTC, the start of that day): "
            f"write the moment, e.g. {value}T23:59:59Z",
        )
    return value


def read_phases(path: Path) -> tuple[Phase, ...]:
    """Phases from YAML: a mapping ``validation:`` / ``test:`` of ``per_day``, ``description``, ``opens``,
    ``closes``, ``freeze`` (ISO date-times, UTC unless a zone is given; ``opens`` may be a bare date,
    00:00 UTC), ``public_fraction`` and ``models`` (false: predictions only). Phases left out keep their
    defaults; a freeze must fall inside the phase."""
    data = read_yaml(path, "phases file")
    if not isinstance(data, dict) or not set(data) <= set(PHASE_NAMES):
        raise DataError(path, f"expected a mapping with keys among {list(PHASE_NAMES)}")
    phases = []
    for default in DEFAULT_PHASES:
        entry = data.get(default.name) or {}
        unknown = set(entry) - {"per_day", "description", "opens", "closes", "freeze", "public_fraction", "models"}
        if unknown:
            raise DataError(path, f"{default.name}: unknown key(s) {sorted(unknown)}")
        per_day = entry.get("per_day", default.per_day)
        if not isinstance(per_day, int) or isinstance(per_day, bool) or per_day < 0:
            raise DataError(path, f"{default.name}.per_day must be an integer >= 0")
        models = entry.get("models", default.models)
        if not isinstance(models, bool):
            raise DataError(path, f"{default.name}.models must be true or false")
        phase = replace(
            default,
            per_day=per_day,
            description=str(entry.get("description", default.description)),
            opens=_when(entry.get("opens"), f"{path}: {default.name}.opens"),
            closes=_when(_moment(entry.get("closes"), path, "closes", default), f"{path}: {default.name}.closes"),
            freeze=_when(_moment(entry.get("freeze"), path, "freeze", default), f"{path}: {default.name}.freeze"),
            models=models,
        )
        fraction = entry.get("public_fraction")
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
                raise DataError(path, f"{default.name}.public_fraction must be a number in (0, 1)")
            phase = replace(phase, public_fraction=float(fraction))
        if phase.opens and phase.closes and phase.closes <= phase.opens:
            raise DataError(path, f"{default.name}: closes before it opens")
        if phase.freeze and phase.closes and phase.freeze >= phase.closes:
            raise DataError(path, f"{default.name}: the freeze must come before the close")
        if phase.freeze and phase.opens and phase.freeze <= phase.opens:
            raise DataError(path, f"{default.name}: the freeze must come after the opening")
        phases.append(phase)
    return tuple(phases)


def default_scoring_workers() -> int:
    """One scoring worker per core but one: the server keeps a core to answer requests (on two cores
    a second worker slows every acknowledgement; ``bench/serve_load.py`` measures both)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with.

    Args:
        gt: the ground-truth root (val and hidden test splits).
        db: the leaderboard database: a SQLite file, or a PostgreSQL URL for workers on several machines.
        data: this machine's scratch folder (each job's unpacked upload while it is scored).
        uploads: the folder every machine of the service shares (a network file system): uploads
            arrive in it and, with a database server, the store keeps scored predictions in its
            ``predictions/``. Default: ``data/uploads`` (one machine; a SQLite store keeps predictions
            beside its file).
        workers: scoring processes (default: one per core but one, ``default_scoring_workers``).
        public_url: the address users open (``https://lb.example.org``) when a reverse proxy
            terminates HTTPS: sign-in accepts that origin, cookies are ``Secure``, and uvicorn trusts
            ``X-Forwarded-*`` from ``trusted_proxies``.
        models: the model submissions the service runs (an allow-list of methods, and each job's limits);
            the default runs none.
        model_device: where this machine's workers run submitted models (``cpu``, or ``cuda``).
        team_rows: which of a team's published rows the public table shows per phase and fraction:
            its ``best`` (highest Dice) or its ``latest``.
        max_attempts: a job whose worker died this many times fails instead of being retried.
        max_queued: a team's jobs waiting or being scored at once, at most (the queue takes teams in turn).
        upload_idle_seconds: an upload that sends nothing for this long is dropped (slow clients).
    """

    gt: Path
    db: str | Path
    data: Path
    uploads: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = field(default_factory=default_scoring_workers)
    lease_seconds: float = 120.0
    max_attempts: int = 3
    max_queued: int = MAX_QUEUED
    poll_seconds: float = 0.2
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    upload_idle_seconds: float = 30.0
    session_hours: float = 12.0
    public_url: str | None = None
    trusted_proxies: str = "127.0.0.1"
    team_rows: Literal["best", "latest"] = "best"
    models: ModelPolicy = field(default_factory=ModelPolicy)
    model_device: str = "cpu"
    fractions: tuple[float, ...] = BENCHMARK_FRACTIONS
    phases: tuple[Phase, ...] = field(default=DEFAULT_PHASES)
    #: phases whose recorded close the organizer moves on purpose (``serve --reopen``; logged)
    reopen: tuple[str, ...] = ()
    title: str = "MOSXAV-Bench leaderboard"
    description: str = (
        "Semi-supervised segmentation of X-ray angiography videos (MOSXAV): train with a fraction of the "
        "annotated training frames, predict every test frame's six-class mask, and submit the folder."
    )

    def __post_init__(self) -> None:
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"public URL {self.public_url!r} must look like https://host[:port]")
        if self.team_rows not in ("best", "latest"):
            raise ValueError("team_rows must be 'best' or 'latest'")
        if self.uploads is None and sqlite_file(self.db) is None:
            raise ValueError("with a database server, give --uploads: a folder every machine of the service shares")
        if self.max_attempts < 1 or self.workers < 0 or self.max_queued < 1:
            raise ValueError("max_attempts and max_queued must be >= 1, workers >= 0")

    @property
    def upload_root(self) -> Path:
        """Where uploads arrive (``<id>/upload.zip``); a job records its upload relative to it."""
        return self.uploads if self.uploads is not None else self.data / "uploads"

    @property
    def store_home(self) -> Path | None:
        """Where the store keeps predictions: beside a SQLite file, else in the shared uploads folder."""
        return predictions_home_for(self.db, self.upload_root)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url is not None and self.public_url.startswith("https://")

    @property
    def public_origin(self) -> str | None:
        if self.public_url is None:
            return None
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    @property
    def phase_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.phases)


__all__ = ["BENCHMARK_FRACTIONS", "DEFAULT_PHASES", "PHASE_NAMES", "Phase", "Settings", "read_phases"]
