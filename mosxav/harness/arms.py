"""An arm's scores as the statistics read them: (seeds x units x classes) sums and frame counts.

An arm is one method at one labeled fraction and noise rate; its per-frame rows become, per training
seed and test unit (a sequence, or an image of a folder of images), the sum of a metric over the
evaluated frames of each class and their number. From these the headline (the frame-weighted macro
mean) and each (seed, unit)'s contribution to it follow (``mosxav.evaluation.uncertainty``), so the
report, ``compare``, the figures and the documentation's tables print one and the same number for a
cell and analyse it the same way. In a cross-validated run each unit carries its fold: the training
that predicted it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mosxav.evaluation.uncertainty import (
    METRIC_RANGE,
    Components,
    Interval,
    PairedComparison,
    difference_range,
    paired_comparison,
    table_interval,
    unit_contributions,
    variance_components,
)


def units_of(frames: pd.DataFrame) -> pd.DataFrame:
    """Frames whose ``sequence`` names their test unit: the sequence, or for a folder of images (one
    "sequence") the image itself."""
    if frames["sequence"].nunique() > 1:
        return frames
    return frames.assign(sequence=frames["sequence"].astype(str) + "/" + frames["frame"].astype(str))


@dataclass(frozen=True)
class ArmTable:
    """One arm's metric sums and evaluated-frame counts per (seed, unit, class)."""

    seeds: list[int]
    units: list[str]
    classes: list[int]
    sums: np.ndarray  # (seeds, units, classes)
    counts: np.ndarray  # (seeds, units, classes)
    folds: list | None  # each unit's fold (cross-validation), None otherwise

    def restricted(self, seeds: Sequence[int], units: Sequence[str]) -> ArmTable:
        """The same arm on ``seeds`` x ``units`` only (the cells another arm shares)."""
        si = [self.seeds.index(s) for s in seeds]
        ui = [self.units.index(u) for u in units]
        folds = None if self.folds is None else [self.folds[i] for i in ui]
        return ArmTable(list(seeds), list(units), self.classes, self.sums[si][:, ui], self.counts[si][:, ui], folds)

    def headline(self) -> tuple[float, np.ndarray]:
        """(the headline: the mean over seeds of each training's frame-weighted macro mean, each (seed,
        unit)'s contribution to it)."""
        return unit_contributions(self.sums, self.counts)


def arm_table(frames: pd.DataFrame, metric: str = "dice", classes: Sequence[int] | None = None) -> ArmTable:
    """An arm's ``ArmTable`` of ``metric`` (over ``classes`` only, when given).

    Raises:
        ValueError: a seed lacks test units another seed has, or a unit lies in two folds.
    """
    frames = units_of(frames)
    if classes is not None:
        frames = frames[frames["class_id"].isin(classes)]
    seeds = sorted(int(s) for s in frames["seed"].unique())
    units = sorted(frames["sequence"].astype(str).unique())
    class_ids = sorted(int(c) for c in frames["class_id"].unique())
    for seed, rows in frames.groupby("seed"):
        have = set(rows["sequence"].astype(str))
        if len(have) != len(units):
            lacking = sorted(set(units) - have)
            raise ValueError(f"seed {seed} of an arm lacks test units {lacking[:3]}")
    evaluated = frames[frames["evaluated"].astype(bool)].assign(sequence=lambda f: f["sequence"].astype(str))
    index = pd.MultiIndex.from_product([seeds, units, class_ids], names=["seed", "sequence", "class_id"])
    grouped = evaluated.groupby(["seed", "sequence", "class_id"])[metric]
    shape = (len(seeds), len(units), len(class_ids))
    sums = grouped.sum().reindex(index, fill_value=0.0).to_numpy(float).reshape(shape)
    counts = grouped.count().reindex(index, fill_value=0).to_numpy(float).reshape(shape)
    return ArmTable(seeds, units, class_ids, sums, counts, _folds(frames, units))


def _folds(frames: pd.DataFrame, units: list[str]) -> list | None:
    if "fold" not in frames.columns or frames["fold"].isna().all():
        return None
    folds = frames.assign(sequence=frames["sequence"].astype(str)).groupby("sequence")["fold"].unique()
    doubled = [u for u in units if len(folds[u]) != 1]
    if doubled:
        raise ValueError(f"test units {doubled[:3]} lie in more than one fold")
    return [int(folds[u][0]) for u in units]


def arm_interval(frames: pd.DataFrame, metric: str = "dice", classes: Sequence[int] | None = None) -> Interval:
    """An arm's headline ``metric`` (or one class's, with ``classes`` of one id) and its interval over
    seeds and units (folds in a cross-validated run), within the metric's range."""
    table = arm_table(frames, metric, classes)
    estimate, contributions = table.headline()
    return table_interval(contributions, table.folds, METRIC_RANGE.get(metric), estimate)


def _shared(a: ArmTable, b: ArmTable) -> tuple[ArmTable, ArmTable]:
    """Both arms on the seeds and units they share, in the same order.

    Raises:
        ValueError: the arms share no seed or no unit.
    """
    seeds = [s for s in a.seeds if s in b.seeds]
    units = [u for u in a.units if u in b.units]
    if not seeds or not units:
        raise ValueError("the two arms share no seed or no test unit")
    return a.restricted(seeds, units), b.restricted(seeds, units)


def paired_arms(
    frames: pd.DataFrame, reference: pd.DataFrame, metric: str = "dice", classes: Sequence[int] | None = None
) -> PairedComparison:
    """``frames``' arm minus ``reference``'s on the seeds and units both have, paired by seed and unit:
    the difference of their headlines, analysed through the (seed, unit) contributions.

    Raises:
        ValueError: the arms share no seed or no unit.
    """
    a, b = _shared(arm_table(frames, metric, classes), arm_table(reference, metric, classes))
    (mean_a, contrib_a), (mean_b, contrib_b) = a.headline(), b.headline()
    return paired_comparison(
        contrib_a,
        contrib_b,
        clusters=a.folds,
        estimate=mean_a - mean_b,
        means=(mean_a, mean_b),
        bounds=difference_range(metric),
    )


def paired_components(
    frames: pd.DataFrame, reference: pd.DataFrame, metric: str = "dice", classes: Sequence[int] | None = None
) -> Components:
    """The variance components (seed, unit, seed x unit) of ``frames``' arm minus ``reference``'s, paired
    as ``paired_arms`` pairs them: what the comparison's MDE is made of, so a study whose realised
    spread exceeds its plan can say how many seeds its goal takes (``seeds_for_mde``).

    Raises:
        ValueError: the arms share no seed or no test unit.
    """
    a, b = _shared(arm_table(frames, metric, classes), arm_table(reference, metric, classes))
    return variance_components(a.headline()[1] - b.headline()[1])
