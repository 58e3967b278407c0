"""The public table of the service: which rows show, one per team and group, ranked among themselves.

Rows are reference runs and the published, unhidden submissions of teams, less those a phase's freeze
holds back. Per (phase, labeled fraction) each team shows one row, by the organizers' rule (its best
Dice, or its latest), and ranks are computed over the rows shown only, so private or superseded rows
never move public ranks. The result is cached on the database's board revision (bumped by triggers on
every change that matters) and the phases' freeze states, so drawing a page reads no stored metadata
unless something changed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd

from mosxav.constants import SEMANTIC_DIR
from mosxav.data.layout import sequence_folders
from mosxav.errors import DataError
from mosxav_leaderboard.board import build_table
from mosxav_leaderboard.service.database import Database, PublicEntry
from mosxav_leaderboard.service.settings import Settings

PHASE_ORDER = {"test": 0, "validation": 1}


@dataclass(frozen=True)
class Group:
    phase: str
    labeled_fraction: float
    rows: pd.DataFrame
    part: str | None = None  # "public" or "private" when the phase splits its sequences


def ranked_parts(settings: Settings, now: datetime) -> dict[str, frozenset[str]]:
    """Split -> the sequences its rows are scored on now (only phases with a public/private split)."""
    parts = {}
    for phase in settings.phases:
        part = phase.part(now)
        if part is None:
            continue
        try:
            _, names = sequence_folders(settings.gt, phase.split, SEMANTIC_DIR)
        except (DataError, FileNotFoundError):
            continue
        parts[phase.split] = phase.sequences(names, part)
    return parts


def public_id(entry: PublicEntry) -> str:
    """The one id users see for a row: its submission (job) number, or ``ref-N`` for a reference run."""
    return str(entry.job_id) if entry.job_id is not None else f"ref-{entry.submission_id}"


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def annotate(table: pd.DataFrame, entries: dict[int, PublicEntry], split_phases: dict[str, str]) -> pd.DataFrame:
    """Add the service's columns to ``build_table``'s rows: team, phase (a reference run's from its
    split), the date submitted, and the public id in place of the store's."""
    table = table.copy()
    shown = [entries[int(i)] for i in table["id"]]
    table["team"] = [e.team or "–" for e in shown]
    table["phase"] = [e.phase or split_phases.get(e.split, e.split) for e in shown]
    table["submitted"] = [e.created for e in shown]
    table["id"] = [public_id(e) for e in shown]
    return table


class PublicBoard:
    """The public groups, recomputed only when the board revision or a freeze state changes."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database, self.settings = database, settings
        self.split_phases = {p.split: p.name for p in settings.phases}
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._groups: list[Group] = []

    def groups(self) -> list[Group]:
        now = datetime.now(timezone.utc)
        frozen = tuple((p.hides(now, now), p.part(now)) for p in self.settings.phases)
        key = (self.database.revision(), frozen)
        with self._lock:
            if key != self._key:
                self._groups, self._key = self._compute(now), key
            return self._groups

    def _visible(self, now: datetime) -> dict[int, PublicEntry]:
        visible = {}
        for entry in self.database.public_entries():
            if entry.phase is not None and self.settings.phase(entry.phase).hides(_moment(entry.created), now):
                continue
            visible[entry.submission_id] = entry
        return visible

    def _compute(self, now: datetime) -> list[Group]:
        entries = self._visible(now)
        if not entries:
            return []
        parts = ranked_parts(self.settings, now)
        candidates, _ = build_table(self.database.store, only_ids=set(entries), parts=parts)
        if candidates.empty:
            return []
        chosen = self._one_per_team(candidates, entries)
        table, _ = build_table(self.database.store, only_ids=chosen, by_structure=True, parts=parts)
        table = annotate(table, entries, self.split_phases)
        groups = [
            Group(phase, float(fraction), rows.drop(columns=["phase"]), self.settings.phase(phase).part(now))
            for (phase, fraction), rows in table.groupby(["phase", "labeled_fraction"])
        ]
        return sorted(groups, key=lambda g: (PHASE_ORDER.get(g.phase, 2), g.labeled_fraction))

    def _one_per_team(self, candidates: pd.DataFrame, entries: dict[int, PublicEntry]) -> set[int]:
        chosen: dict[tuple, tuple[float, str, int]] = {}
        keep = set()
        for _, row in candidates.iterrows():
            entry = entries[int(row["id"])]
            if entry.team is None:
                keep.add(entry.submission_id)
                continue
            group = (entry.team, row["dataset_hash"], float(row["labeled_fraction"]))
            merit = (float(row["dice"]), entry.created) if self.settings.team_rows == "best" else (0.0, entry.created)
            if group not in chosen or merit > chosen[group][:2]:
                chosen[group] = (*merit, entry.submission_id)
        return keep | {value[2] for value in chosen.values()}


__all__ = ["Group", "PublicBoard", "annotate", "public_id", "ranked_parts"]
