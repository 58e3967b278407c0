"""The leaderboard's operations: submit (validate, score, record), re-score on a metric change, and
build the table (ranks with ties where confidence intervals overlap, paired test against the leader).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mosxav import toolkit_version
from mosxav.constants import CLASS_NAMES
from mosxav.data.download import cache_home
from mosxav.data.files import open_to_group
from mosxav.evaluation.metrics import METRIC_VERSION, RANKED_METRICS
from mosxav.evaluation.uncertainty import SequenceSums, paired_permutation_p, sequence_interval
from mosxav_leaderboard.columns import COLUMNS, STRUCTURES, stored_order
from mosxav_leaderboard.scoring import Scores, dataset_hash, score_predictions, scores_from_frames
from mosxav_leaderboard.store import DuplicateSubmission, ScoreRow, Store
from mosxav_leaderboard.submission import PreparedSubmission, prepare


def default_db() -> Path:
    return cache_home() / "leaderboard" / "leaderboard.sqlite"


def _score_row(submission_id: int, scores: Scores, data_hash: str) -> ScoreRow:
    return ScoreRow(
        submission_id, METRIC_VERSION, toolkit_version(), data_hash, scores.summary_json(), scores.sums.to_json()
    )


def _keep_predictions(store: Store, prepared_dir: Path, prediction_hash: str, movable: bool) -> Path:
    """Put validated predictions in ``predictions/<hash>`` (content-addressed, written via a temp dir).

    PNGs extracted into scratch space (``movable``) are moved, not read again; a submitted folder is copied.
    """
    final = store.predictions_home / prediction_hash
    if not final.is_dir():
        store.predictions_home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming.", dir=store.predictions_home))
        try:
            for png in prepared_dir.rglob("*.png"):
                target = staging / png.relative_to(prepared_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                _place(png, target, movable)
            try:
                open_to_group(staging)
                staging.rename(final)
            except OSError:  # a concurrent submit of the same predictions won the race
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _place(source: Path, target: Path, movable: bool) -> None:
    """Move ``source`` where the file system allows it (same device), else copy it."""
    if movable:
        try:
            source.rename(target)
            return
        except OSError:
            pass
    shutil.copyfile(source, target)


@dataclass
class ScoredSubmission:
    """A validated and scored submission, its predictions kept in the store, not yet in the table."""

    fields: dict[str, Any]  # the keyword arguments of ``Store.insert_submission``


def score_submission(
    path: str | Path,
    gt: str | Path,
    store: Store,
    work: str | Path,
    *,
    split: str = "test",
    dataset: str | None = None,
    is_reference: bool = False,
    fractions: tuple[float, ...] | None = None,
    duplicate_scope: str | None = None,
    data_hash: str | None = None,
    workers: int | None = None,
) -> ScoredSubmission:
    """Validate and score a submission in ``work``; keep its predictions.

    Args:
        data_hash: the ground truth's ``dataset_hash`` when the caller knows it (a worker hashes its
            ground truth once at start); None: hashed here.
        workers: processes scoring the sequences (``prepare``).
        fractions: the benchmark's labeled fractions (None: any in [0, 1]).
        duplicate_scope: whose earlier submissions count as duplicates (a service passes the team, so
            identical predictions of two teams are two rows and one team learns nothing of another's
            uploads); None: every submission in the store.

    Raises:
        SubmissionInvalid: with every problem found.
        DuplicateSubmission: identical predictions were already recorded in the scope.
    """
    gt, work = Path(gt), Path(work)
    data_hash = data_hash or dataset_hash(gt, split)
    prepared: PreparedSubmission = prepare(path, gt, work, split, fractions, workers)
    stored_hash = prepared.prediction_hash
    if duplicate_scope is not None:
        stored_hash = hashlib.sha256(f"{duplicate_scope}:{prepared.prediction_hash}".encode()).hexdigest()
    existing = store.find_duplicate(stored_hash, data_hash)
    if existing is not None:
        raise DuplicateSubmission(existing)
    score = _score_row(0, scores_from_frames(prepared.frames), data_hash)
    movable = prepared.predictions.resolve().is_relative_to(work.resolve())
    kept = _keep_predictions(store, prepared.predictions, prepared.prediction_hash, movable)
    meta = prepared.meta.to_mapping()
    if prepared.partition is not None:
        meta["labeled_frames"] = len(prepared.partition.labeled)
    return ScoredSubmission(
        dict(
            method=prepared.meta.method,
            dataset=dataset or gt.name,
            dataset_hash=data_hash,
            split=split,
            labeled_fraction=prepared.meta.labeled_fraction,
            prediction_hash=stored_hash,
            predictions_dir=str(kept.relative_to(store.home)),
            is_reference=is_reference,
            meta=meta,
            score=score,
        )
    )


def submit(
    path: str | Path,
    gt: str | Path,
    store: Store,
    *,
    split: str = "test",
    dataset: str | None = None,
    is_reference: bool = False,
) -> int:
    """Validate, score and record a submission; returns its id. Raises SubmissionInvalid /
    DuplicateSubmission with a readable message."""
    with tempfile.TemporaryDirectory(prefix="mosxav-submit-") as work:
        scored = score_submission(path, gt, store, work, split=split, dataset=dataset, is_reference=is_reference)
    return store.add_submission(**scored.fields)


def rescore_stale(store: Store, gt: str | Path, split: str = "test") -> list[int]:
    """Score, under the current metric version, every stored submission on this ground truth that
    lacks such a score (after a metric change); returns the ids re-scored."""
    gt = Path(gt)
    data_hash = dataset_hash(gt, split)
    current = store.scores(METRIC_VERSION)
    done = []
    for sub in store.submissions():
        if sub["dataset_hash"] != data_hash or sub["id"] in current:
            continue
        predictions = store.home / sub["predictions_dir"]
        store.add_score(sub["id"], _score_row(sub["id"], score_predictions(gt, predictions, split), data_hash))
        done.append(sub["id"])
    return done


def _on_part(score: ScoreRow, names: frozenset[str]) -> tuple[dict[str, Any], ScoreRow]:
    """A score's summary recomputed on the sequences in ``names`` (same formulas as ``scoring``)."""
    sums = SequenceSums.from_json(score.sequences).subset(names)
    classes = {"mean": {m: sums.headline(m) for m in RANKED_METRICS}}
    per_class = {m: sums.per_class(m) for m in RANKED_METRICS}
    for class_id in sums.classes:
        classes[CLASS_NAMES[class_id]] = {m: per_class[m][class_id] for m in RANKED_METRICS}
    summary = {"classes": classes, "ci": {m: list(sequence_interval(sums, m)) for m in RANKED_METRICS}}
    part = ScoreRow(
        score.submission_id, score.metric_version, score.toolkit_version, score.dataset_hash, summary, sums.to_json()
    )
    return summary, part


def build_table(
    store: Store,
    *,
    label_fraction: float | None = None,
    by_structure: bool = False,
    only_ids: set[int] | None = None,
    parts: dict[str, frozenset[str]] | None = None,
) -> tuple[pd.DataFrame, list[int]]:
    """The leaderboard under the current metric version and the ids of submissions still awaiting a
    re-score (they are left out, never mixed in). ``only_ids`` restricts the table, ranks included, to
    those submissions (the service's public table: private rows must not move public ranks).

    Rank: within a (dataset, labeled fraction) group, 1 + the number of entries whose Dice interval
    lies entirely above this entry's, so overlapping intervals share a rank (and with fewer than
    ``MIN_UNITS`` sequences, no interval: every entry ranks 1). Each row is one training: its interval
    covers test sequences only. ``p_vs_leader``: the
    paired permutation test of per-sequence Dice against the group's best entry.

    ``parts`` (split -> sequence names) scores the rows of those splits on that part of their sequences
    only: metrics, intervals, per-structure Dice and the paired test (a challenge's public or private part).
    """
    scores = store.scores(METRIC_VERSION, only_ids)
    rows, stale = [], []
    for sub in store.submissions(only_ids):
        if label_fraction is not None and abs(sub["labeled_fraction"] - label_fraction) > 1e-9:
            continue
        score = scores.get(sub["id"])
        if score is None:
            stale.append(sub["id"])
            continue
        meta, summary = sub["meta"], score.summary
        if parts is not None and sub["split"] in parts:
            summary, score = _on_part(score, parts[sub["split"]])
        mean = summary["classes"]["mean"]
        # the interval from the stored per-sequence sums with today's method, never the one stored at scoring
        dice_lo, dice_hi = sequence_interval(SequenceSums.from_json(score.sequences), "dice")
        row: dict[str, Any] = {
            "id": sub["id"],
            "method": sub["method"],
            "dataset": sub["dataset"],
            "labeled_fraction": sub["labeled_fraction"],
            "dice": mean["dice"],
            "dice_lo": dice_lo,
            "dice_hi": dice_hi,
            "iou": mean["iou"],
            "hd95": mean["hd95"],
            "assd": mean["assd"],
            "reference": bool(sub["is_reference"]),
            "provenance": sub["provenance"],
            "extra_data": bool(meta.get("extra_training_data", False)),
            "parameters": meta.get("parameters"),
            "seeds": meta.get("seeds"),
            "authors": meta.get("authors"),
            "code_url": meta.get("code_url", ""),
            "paper_url": meta.get("paper_url", ""),
            "submitted": sub["created"],
            "dataset_hash": sub["dataset_hash"][:12],
            "metric_version": score.metric_version,
            "toolkit_version": score.toolkit_version,
            "_sums": score.sequences,
        }
        if by_structure:
            for name, values in summary["classes"].items():
                if name != "mean":
                    row[f"dice_{name}"] = values["dice"]
        rows.append(row)
    columns = [c.key for c in COLUMNS if c.stored and c.key != STRUCTURES]
    if not rows:
        return pd.DataFrame(columns=columns), stale
    table = pd.DataFrame(rows)
    table["rank"] = 0
    table["p_vs_leader"] = np.nan
    for _, group in table.groupby(["dataset_hash", "labeled_fraction"]):
        for idx, row in group.iterrows():
            table.loc[idx, "rank"] = 1 + int((group["dice_lo"] > row["dice_hi"]).sum())
        leader = group["dice"].idxmax()
        leader_seq = SequenceSums.from_json(group.loc[leader, "_sums"])
        for idx, row in group.iterrows():
            if idx == leader:
                continue
            other = SequenceSums.from_json(row["_sums"])
            if other.sequences == leader_seq.sequences:
                table.loc[idx, "p_vs_leader"] = paired_permutation_p(other.contributions(), leader_seq.contributions())
    table = table.drop(columns=["_sums"]).sort_values(
        ["dataset", "labeled_fraction", "dice"], ascending=[True, True, False]
    )
    return table[stored_order(list(table.columns))].reset_index(drop=True), stale


__all__ = ["ScoredSubmission", "build_table", "default_db", "rescore_stale", "score_submission", "submit"]
