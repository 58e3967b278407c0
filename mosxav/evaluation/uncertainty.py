"""Uncertainty over test *sequences*: frames of one video are not independent, so intervals and
tests resample or sign-flip whole sequences.

``bootstrap_ci``: 2,000 seeded draws of sequences with replacement; each draw recomputes the
frame-weighted per-structure means from per-sequence sums and counts, then the macro mean; the
percentile 95 % interval. ``paired_permutation_p``: an exact sign-flip permutation test on paired
per-sequence differences (Monte Carlo beyond 16 sequences). The leaderboard and the run report use both.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mosxav.evaluation.metrics import RANKED_METRICS

#: Draws of a leaderboard row's interval: recomputed for every public/private part of a phase.
BOOTSTRAP_SAMPLES = 2000
#: Draws of a paired comparison's interval (``mosxav-bench compare``): one per method pair, so the
#: interval's own Monte Carlo error can be smaller.
COMPARISON_SAMPLES = 10_000


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
        counts = (
            evaluated.pivot_table(index="sequence", columns="class_id", values="dice", aggfunc="count")
            .reindex(index=sequences, columns=classes)
            .fillna(0)
        )
        sums = {
            m: evaluated.pivot_table(index="sequence", columns="class_id", values=m, aggfunc="sum")
            .reindex(index=sequences, columns=classes)
            .fillna(0)
            .to_numpy()
            for m in RANKED_METRICS
        }
        return cls(sequences, [int(c) for c in classes], sums, counts.to_numpy())

    def to_json(self) -> dict:
        return {
            "sequences": self.sequences,
            "classes": self.classes,
            "counts": self.counts.tolist(),
            "sums": {m: v.tolist() for m, v in self.sums.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> "SequenceSums":
        return cls(
            data["sequences"],
            data["classes"],
            {m: np.asarray(v, float) for m, v in data["sums"].items()},
            np.asarray(data["counts"], float),
        )

    def subset(self, names: set[str] | frozenset[str]) -> "SequenceSums":
        """The sums of the sequences in ``names`` only (a public or private part of a test split)."""
        keep = [i for i, name in enumerate(self.sequences) if name in names]
        return SequenceSums(
            [self.sequences[i] for i in keep],
            self.classes,
            {m: v[keep] for m, v in self.sums.items()},
            self.counts[keep],
        )

    def headline(self, metric: str) -> float:
        """The frame-weighted macro mean over every sequence held (the table's number)."""
        return float(self.macro(metric, np.ones((1, len(self.sequences))))[0])

    def per_class(self, metric: str) -> dict[int, float]:
        """Class id -> frame-weighted mean over every sequence held (NaN where never evaluated)."""
        totals, counts = self.sums[metric].sum(0), self.counts.sum(0)
        return {c: float(t / n) if n else float("nan") for c, t, n in zip(self.classes, totals, counts, strict=True)}

    def macro(self, metric: str, weights: np.ndarray) -> np.ndarray:
        """Macro mean over classes of frame-weighted means, for each row of sequence weights (B, S)."""
        totals = weights @ self.sums[metric]  # (B, C)
        counts = weights @ self.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = totals / counts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a draw without any evaluated class: NaN, dropped later
            return np.nanmean(np.where(counts > 0, per_class, np.nan), axis=1)

    def per_sequence_headline(self, metric: str = "dice") -> np.ndarray:
        return self.macro(metric, np.eye(len(self.sequences)))


def resampled_units(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """(samples, n) indices of ``n`` units drawn with replacement, ``samples`` times (seeded): the one
    bootstrap draw behind every interval of the toolkit."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The percentile 95% interval of bootstrap statistics (NaN draws dropped; NaNs when none is left)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def bootstrap_ci(
    sums: SequenceSums, metric: str, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95% interval of the headline metric when sequences are resampled with replacement
    (NaN when the metric is never evaluated: a structure absent from every frame)."""
    n = len(sums.sequences)
    draws = resampled_units(n, samples, seed)
    weights = np.zeros((samples, n))
    np.add.at(weights, (np.repeat(np.arange(samples), n), draws.ravel()), 1)
    return percentile_interval(sums.macro(metric, weights))


def bootstrap_mean_ci(values: np.ndarray, samples: int = COMPARISON_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean of paired differences when units are resampled."""
    values = np.asarray(values, float)
    return percentile_interval(values[resampled_units(values.size, samples, seed)].mean(1))


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
