"""Scoring a validated submission: metrics per structure, bootstrap confidence intervals over
sequences, the paired test against the leader, and the hashes that make every number traceable.

Per structure, the score is ``mosxav.metrics``' mean over the frames where the structure is present
in the ground truth or the prediction; the headline is the macro mean over structures. Frames of one
video are not independent, so uncertainty comes from resampling *sequences* (2,000 bootstrap draws,
percentile 95% interval, seeded): each draw recomputes the frame-weighted per-structure means from
per-sequence sums and counts, then the macro mean. The paired test against the leader is an exact
sign-flip permutation test on per-sequence headline Dice differences (Monte Carlo beyond 16 sequences).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mosxav.constants import SEMANTIC_DIR
from mosxav.evaluate import evaluate_semantic
from mosxav.layout import sequence_folders
from mosxav.metrics import summarize

METRICS = ("dice", "iou", "hd95", "assd")
BOOTSTRAP_SAMPLES = 2000


def dataset_hash(gt: str | Path, split: str = "test") -> str:
    """SHA-256 over the ground-truth semantic masks of the split (names and bytes)."""
    gt_root, names = sequence_folders(gt, split, SEMANTIC_DIR)
    digest = hashlib.sha256()
    for name in names:
        for path in sorted((gt_root / name).glob("*.png")):
            digest.update(f"{name}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class SequenceSums:
    """Per sequence and class: metric sums over evaluated frames and their counts.

    Enough to recompute any frame-weighted mean over a subset (or resample) of sequences."""

    sequences: list[str]
    classes: list[int]
    sums: dict[str, np.ndarray]  # metric -> (S, C)
    counts: np.ndarray  # (S, C)

    @classmethod
    def from_frames(cls, frames: pd.DataFrame) -> "SequenceSums":
        evaluated = frames[frames["evaluated"]]
        sequences = sorted(frames["sequence"].unique())
        classes = sorted(frames["class_id"].unique())
        counts = evaluated.pivot_table(index="sequence", columns="class_id", values="dice", aggfunc="count").reindex(index=sequences, columns=classes).fillna(0)
        sums = {m: evaluated.pivot_table(index="sequence", columns="class_id", values=m, aggfunc="sum").reindex(index=sequences, columns=classes).fillna(0).to_numpy()
                for m in METRICS}
        return cls(sequences, [int(c) for c in classes], sums, counts.to_numpy())

    def to_json(self) -> dict:
        return {"sequences": self.sequences, "classes": self.classes, "counts": self.counts.tolist(),
                "sums": {m: v.tolist() for m, v in self.sums.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "SequenceSums":
        return cls(data["sequences"], data["classes"], {m: np.asarray(v, float) for m, v in data["sums"].items()}, np.asarray(data["counts"], float))

    def macro(self, metric: str, weights: np.ndarray) -> np.ndarray:
        """Macro mean over classes of frame-weighted means, for each row of sequence weights (B, S)."""
        totals = weights @ self.sums[metric]  # (B, C)
        counts = weights @ self.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = totals / counts
        return np.nanmean(np.where(counts > 0, per_class, np.nan), axis=1)

    def per_sequence_headline(self, metric: str = "dice") -> np.ndarray:
        return self.macro(metric, np.eye(len(self.sequences)))


def bootstrap_ci(sums: SequenceSums, metric: str, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the headline metric when sequences are resampled with replacement."""
    n = len(sums.sequences)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(samples, n))
    weights = np.zeros((samples, n))
    np.add.at(weights, (np.repeat(np.arange(samples), n), draws.ravel()), 1)
    values = sums.macro(metric, weights)
    values = values[~np.isnan(values)]
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def paired_permutation_p(a: np.ndarray, b: np.ndarray, samples: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of mean(a - b) = 0 under sign flips of the paired differences."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    diff = diff[~np.isnan(diff)]
    if diff.size == 0 or np.allclose(diff, 0):
        return 1.0
    observed = abs(diff.mean())
    if diff.size <= 16:
        signs = np.array(list(itertools.product((-1, 1), repeat=diff.size)))
    else:
        signs = np.random.default_rng(seed).choice((-1, 1), size=(samples, diff.size))
    stats = np.abs((signs * diff).mean(1))
    return float(np.mean(stats >= observed - 1e-12))


@dataclass
class Scores:
    frames: pd.DataFrame
    summary: pd.DataFrame  # one row per class and "mean", as mosxav.metrics.summarize
    sums: SequenceSums
    ci: dict[str, tuple[float, float]]  # headline metric -> interval

    def summary_json(self) -> dict:
        rows = {str(r["class"]): {m: float(r[m]) for m in METRICS} | {"n_evaluated": int(r["n_evaluated"])} for _, r in self.summary.iterrows()}
        return {"classes": rows, "ci": {m: list(v) for m, v in self.ci.items()}}


def score_predictions(gt: str | Path, predictions: str | Path, split: str = "test") -> Scores:
    frames = evaluate_semantic(gt, predictions, split=split)
    summary = summarize(frames)
    sums = SequenceSums.from_frames(frames)
    ci = {m: bootstrap_ci(sums, m) for m in METRICS}
    return Scores(frames, summary, sums, ci)


