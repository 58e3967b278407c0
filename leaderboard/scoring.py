"""Scoring a validated submission: metrics per structure, confidence intervals over
sequences, the paired test against the leader, and the hashes that make every number traceable.

Per structure, the score is ``mosxav.evaluation.metrics``' mean over the frames where the structure is present
in the ground truth or the prediction; the headline is the macro mean over structures. Frames of one
video are not independent, so uncertainty comes from resampling *sequences*
(``mosxav.evaluation.uncertainty``: a t interval whose standard error comes from 2,000 seeded draws of
sequences, each recomputing the frame-weighted per-structure means from per-sequence sums and counts,
then the macro mean; none under six sequences). One submission is one training: its interval covers
test sequences only. The paired test against the leader is an exact
sign-flip permutation test on per-sequence headline Dice differences (Monte Carlo beyond 16 sequences).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mosxav.constants import SEMANTIC_DIR
from mosxav.data.layout import mask_frames, sequence_folders
from mosxav.evaluation.folder import evaluate_semantic
from mosxav.evaluation.metrics import RANKED_METRICS, summarize
from mosxav.evaluation.uncertainty import SequenceSums, sequence_interval


def dataset_hash(gt: str | Path, split: str = "test") -> str:
    """SHA-256 over the ground-truth semantic masks of the split (names and bytes)."""
    gt_root, names = sequence_folders(gt, split, SEMANTIC_DIR)
    digest = hashlib.sha256()
    for name in names:
        for path in mask_frames(gt_root / name):
            digest.update(f"{name}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Scores:
    frames: pd.DataFrame
    summary: pd.DataFrame  # one row per class and "mean", as mosxav.evaluation.metrics.summarize
    sums: SequenceSums
    ci: dict[str, tuple[float, float]]  # headline metric -> interval

    def summary_json(self) -> dict:
        rows = {
            str(r["class"]): {m: float(r[m]) for m in RANKED_METRICS} | {"n_evaluated": int(r["n_evaluated"])}
            for _, r in self.summary.iterrows()
        }
        return {"classes": rows, "ci": {m: list(v) for m, v in self.ci.items()}}


def score_predictions(gt: str | Path, predictions: str | Path, split: str = "test") -> Scores:
    """Score a folder of trusted predictions (a validated submission arrives with its frames scored)."""
    return scores_from_frames(evaluate_semantic(gt, predictions, split=split))


def scores_from_frames(frames: pd.DataFrame) -> Scores:
    """The summary, per-sequence sums and intervals of per-(frame, class) metrics."""
    summary = summarize(frames)
    sums = SequenceSums.from_frames(frames)
    ci = {m: sequence_interval(sums, m) for m in RANKED_METRICS}
    return Scores(frames, summary, sums, ci)
