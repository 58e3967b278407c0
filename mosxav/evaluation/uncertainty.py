"""Uncertainty over test units and training seeds: the one interval and the tests the toolkit prints.

A test unit is a sequence (or an image), never a frame: frames of one video are not independent, so
every interval and test resamples or sign-flips whole units. A training seed is a second source of
variance: two trainings of one method on the same data differ by more than most effects between
methods (docs/statistics.md), so a comparison over several seeds must see both.

**The interval** (``crossed_interval``): estimate ± t(df) x SE, where SE² = V_seed + V_unit, each
component the variance of the statistic when that level alone is resampled (seeds with the units held,
units with the seeds held; 2,000 seeded draws each), scaled by n / (n - 1) so that it is not the
plug-in's underestimate, and df the Welch-Satterthwaite degrees of freedom of the two components. With
one seed it is the t interval with a bootstrap standard error over units (df = units - 1); with several
it is the two-way (seeds x units crossed) analogue, conservative by the interaction's share. Why not
the percentile bootstrap: at the unit counts we ship it under-covers (0.80 at 4 units, 0.88 at 8, 0.92
at 16, for a nominal 0.95), and with two seeds it can only combine three seed draws. The coverage
measured by simulation, per unit and seed count, is in docs/statistics.md (``bench/interval_coverage.py``)
and checked by ``tests/test_uncertainty.py``.

**Fewer than ``MIN_UNITS`` units**: no interval and no rank. Below six units the exact sign-flip test
cannot reach p < 0.05 (its smallest p is 2 / 2**n); the tables say so in words.

**Tests.** One seed: the exact paired sign-flip permutation test over units (``paired_permutation_p``;
Monte Carlo beyond 16 units). Several seeds: ``crossed_t_test``, the same t statistic and degrees of
freedom as the interval, so a difference is significant exactly when its interval excludes 0.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mosxav.evaluation.metrics import RANKED_METRICS

#: Draws of each level's resampling for an interval (one set per leaderboard row and part).
BOOTSTRAP_SAMPLES = 2000
#: Draws for a paired comparison (``mosxav-bench compare``): one per method pair, so more are affordable.
COMPARISON_SAMPLES = 10_000
#: The nominal coverage of every interval the toolkit prints.
CONFIDENCE = 0.95
#: The fewest test units with an interval and a rank: the exact sign-flip test over 5 units cannot go
#: below p = 2 / 2**5 = 0.0625, so with fewer than 6 nothing can be called different at 0.05.
MIN_UNITS = 6
#: The significance level of every rank and verdict.
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval; ``low``/``high`` are NaN where there are too few units."""

    estimate: float
    low: float
    high: float
    se: float
    df: float
    seeds: int
    units: int

    @property
    def defined(self) -> bool:
        return not np.isnan(self.low)

    def excludes_zero(self) -> bool:
        return self.defined and (self.low > 0 or self.high < 0)

    def text(self, digits: int = 3, signed: bool = False) -> str:
        """``0.812 [0.790, 0.834]``, or the estimate and why there is no interval."""
        form = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
        if np.isnan(self.estimate):
            return "–"
        if not self.defined:
            return f"{form.format(self.estimate)} (n {self.units}: no interval)"
        return f"{form.format(self.estimate)} [{form.format(self.low)}, {form.format(self.high)}]"


def _counts(n: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples, n) multiplicities of ``n`` units drawn with replacement ``samples`` times."""
    draws = rng.integers(0, n, size=(samples, n))
    weights = np.zeros((samples, n))
    np.add.at(weights, (np.repeat(np.arange(samples), n), draws.ravel()), 1)
    return weights


def resampled_units(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """(samples, n) indices of ``n`` units drawn with replacement, ``samples`` times (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


#: A statistic of the data under weights: (seed weights (B, S), unit weights (B, U)) -> (B,) values.
WeightedStatistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _level_variance(values: np.ndarray, n: int) -> float:
    """A level's resampling variance made unbiased for its n units (x n / (n - 1)); 0 with one unit."""
    values = values[~np.isnan(values)]
    if n < 2 or values.size < 2:
        return 0.0
    return float(values.var(ddof=1)) * n / (n - 1)


def satterthwaite_df(v_seed: float, v_unit: float, seeds: int, units: int) -> float:
    """Welch-Satterthwaite degrees of freedom of V_seed + V_unit (seeds - 1 and units - 1 each)."""
    parts = [(v_seed, seeds - 1), (v_unit, units - 1)]
    denominator = sum(v * v / d for v, d in parts if d > 0 and v > 0)
    total = v_seed + v_unit
    if denominator == 0:
        return float(max(units - 1, 1))
    return total * total / denominator


def crossed_interval(
    statistic: WeightedStatistic,
    seeds: int,
    units: int,
    samples: int = BOOTSTRAP_SAMPLES,
    rng_seed: int = 0,
) -> Interval:
    """The toolkit's interval of ``statistic`` over ``seeds`` x ``units`` (module docstring)."""
    estimate = float(statistic(np.ones((1, seeds)), np.ones((1, units)))[0])
    if units < MIN_UNITS or np.isnan(estimate):
        return Interval(estimate, np.nan, np.nan, np.nan, np.nan, seeds, units)
    rng = np.random.default_rng(rng_seed)
    v_unit = _level_variance(statistic(np.ones((samples, seeds)), _counts(units, samples, rng)), units)
    v_seed = 0.0
    if seeds > 1:
        v_seed = _level_variance(statistic(_counts(seeds, samples, rng), np.ones((samples, units))), seeds)
    se = float(np.sqrt(v_seed + v_unit))
    df = satterthwaite_df(v_seed, v_unit, seeds, units)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    return Interval(estimate, estimate - half, estimate + half, se, df, seeds, units)


def _mean_statistic(values: np.ndarray) -> WeightedStatistic:
    """The weighted mean of a (seeds, units) table, NaN cells left out."""
    present = (~np.isnan(values)).astype(float)
    filled = np.nan_to_num(values)

    def statistic(seed_w: np.ndarray, unit_w: np.ndarray) -> np.ndarray:
        total = np.einsum("bs,bu,su->b", seed_w, unit_w, filled)
        count = np.einsum("bs,bu,su->b", seed_w, unit_w, present)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count

    return statistic


def mean_interval(values: np.ndarray, samples: int = COMPARISON_SAMPLES, rng_seed: int = 0) -> Interval:
    """The interval of the mean of a (seeds, units) table (or of a vector of units: one seed)."""
    values = np.atleast_2d(np.asarray(values, float))
    return crossed_interval(_mean_statistic(values), values.shape[0], values.shape[1], samples, rng_seed)


def crossed_t_test(values: np.ndarray, samples: int = COMPARISON_SAMPLES, rng_seed: int = 0) -> float:
    """Two-sided p of mean = 0 for a (seeds, units) table of paired differences, with the interval's
    standard error and degrees of freedom (so p < 0.05 exactly when the interval excludes 0)."""
    interval = mean_interval(values, samples, rng_seed)
    if np.isnan(interval.estimate) or interval.estimate == 0:
        return 1.0
    if not interval.defined:
        return float("nan")
    if interval.se == 0:
        return 0.0
    return float(2 * stats.t.sf(abs(interval.estimate) / interval.se, interval.df))


def paired_permutation_p(a: np.ndarray, b: np.ndarray, samples: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of mean(a - b) = 0 under sign flips of the paired differences (exact up to 16
    units: its smallest value is 2 / 2**n)."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    diff = diff[~np.isnan(diff)]
    if diff.size == 0 or np.allclose(diff, 0):
        return 1.0
    observed = abs(diff.mean())
    if diff.size <= 16:
        signs = np.array(list(itertools.product((-1, 1), repeat=diff.size)))
    else:
        signs = np.random.default_rng(seed).choice((-1, 1), size=(samples, diff.size))
    values = np.abs((signs * diff).mean(1))
    return float(np.mean(values >= observed - 1e-12))


@dataclass(frozen=True)
class PairedComparison:
    """``method - reference`` over paired (seed, unit) cells: what ``compare`` and the report print."""

    interval: Interval
    p: float
    test: str  # "sign-flip over units" (one seed) or "crossed t over seeds and units"
    per_seed: tuple[float, ...]  # the mean difference within each seed
    method_mean: float
    reference_mean: float
    better: int  # units where the seed-averaged difference is above 0
    worse: int

    @property
    def significant(self) -> bool:
        return not np.isnan(self.p) and self.p < ALPHA and self.interval.excludes_zero()


def minimum_detectable_effect(interval: Interval, power: float = 0.8) -> float:
    """The difference a comparison with this standard error and df finds with ``power`` at a two-sided
    5 % level: (t(0.975, df) + t(power, df)) x SE (NaN without an interval)."""
    if not interval.defined:
        return float("nan")
    return float((stats.t.ppf(0.5 + CONFIDENCE / 2, interval.df) + stats.t.ppf(power, interval.df)) * interval.se)


def verdict(result: PairedComparison, margin: float = 0.01) -> str:
    """docs/diffproto.md's rule: ``"better"`` when the difference is at least ``margin``, positive in
    every seed and its interval above 0; ``"worse"`` mirrored; otherwise ``"no detectable effect"``."""
    interval = result.interval
    if not interval.defined:
        return "no detectable effect"
    if interval.estimate >= margin and all(v > 0 for v in result.per_seed) and interval.low > 0:
        return "better"
    if interval.estimate <= -margin and all(v < 0 for v in result.per_seed) and interval.high < 0:
        return "worse"
    return "no detectable effect"


def paired_comparison(
    values: np.ndarray, reference: np.ndarray, samples: int = COMPARISON_SAMPLES, rng_seed: int = 0
) -> PairedComparison:
    """Compare two (seeds, units) tables paired cell by cell (a seed of one method with the same seed of
    the other: same partition, same batches; units where either is NaN are dropped)."""
    values, reference = np.atleast_2d(np.asarray(values, float)), np.atleast_2d(np.asarray(reference, float))
    keep = ~(np.isnan(values) | np.isnan(reference)).any(0)
    values, reference = values[:, keep], reference[:, keep]
    diff = values - reference
    interval = mean_interval(diff, samples, rng_seed)
    by_unit = diff.mean(0)
    if diff.shape[0] == 1:
        p = paired_permutation_p(values[0], reference[0]) if interval.defined else float("nan")
        test = "sign-flip over units"
    else:
        p = crossed_t_test(diff, samples, rng_seed)
        test = "crossed t over seeds and units"
    return PairedComparison(
        interval=interval,
        p=p,
        test=test,
        per_seed=tuple(float(v) for v in diff.mean(1)) if diff.size else (),
        method_mean=float(values.mean()) if values.size else np.nan,
        reference_mean=float(reference.mean()) if reference.size else np.nan,
        better=int((by_unit > 0).sum()),
        worse=int((by_unit < 0).sum()),
    )


@dataclass
class SequenceSums:
    """Per sequence and class: metric sums over evaluated frames and their counts.

    Enough to recompute any frame-weighted mean over a subset (or resample) of sequences."""

    sequences: list[str]
    classes: list[int]
    sums: dict[str, np.ndarray]  # metric -> (S, C)
    counts: np.ndarray  # (S, C)

    @classmethod
    def from_frames(cls, frames: pd.DataFrame, classes: Sequence[int] | None = None) -> SequenceSums:
        """From per-(frame, class) rows; ``classes`` fixes the columns (to stack seeds of one arm)."""
        evaluated = frames[frames["evaluated"].astype(bool)]
        sequences = sorted(frames["sequence"].astype(str).unique())
        classes = sorted(frames["class_id"].unique()) if classes is None else list(classes)
        evaluated = evaluated.assign(sequence=evaluated["sequence"].astype(str))
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
    def from_json(cls, data: dict) -> SequenceSums:
        return cls(
            data["sequences"],
            data["classes"],
            {m: np.asarray(v, float) for m, v in data["sums"].items()},
            np.asarray(data["counts"], float),
        )

    def subset(self, names: set[str] | frozenset[str]) -> SequenceSums:
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
        return _macro(weights @ self.sums[metric], weights @ self.counts)

    def per_sequence_headline(self, metric: str = "dice") -> np.ndarray:
        return self.macro(metric, np.eye(len(self.sequences)))


def _macro(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, C) weighted sums and counts -> (B,) macro means over the classes evaluated in each draw."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = totals / counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw without any evaluated class: NaN
        return np.nanmean(np.where(counts > 0, per_class, np.nan), axis=1)


def headline_interval(
    seeds: Sequence[SequenceSums], metric: str, samples: int = BOOTSTRAP_SAMPLES, rng_seed: int = 0
) -> Interval:
    """The interval of the frame-weighted macro ``metric`` pooled over the trainings ``seeds`` (each a
    ``SequenceSums`` of the same sequences and classes): seeds and sequences resampled as two crossed
    levels; with one training it covers test-sequence variation only."""
    first = seeds[0]
    for other in seeds[1:]:
        if other.sequences != first.sequences or other.classes != first.classes:
            raise ValueError("seeds of one arm must be scored on the same sequences and classes")
    sums = np.stack([s.sums[metric] for s in seeds])  # (seeds, units, classes)
    counts = np.stack([s.counts for s in seeds])

    def statistic(seed_w: np.ndarray, unit_w: np.ndarray) -> np.ndarray:
        totals = np.einsum("bs,bu,suc->bc", seed_w, unit_w, sums)
        return _macro(totals, np.einsum("bs,bu,suc->bc", seed_w, unit_w, counts))

    return crossed_interval(statistic, len(seeds), len(first.sequences), samples, rng_seed)


def bootstrap_ci(
    sums: SequenceSums, metric: str, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The 95 % interval of one training's headline ``metric`` over its test sequences (NaN when the
    metric is never evaluated or there are fewer than ``MIN_UNITS`` sequences)."""
    interval = headline_interval([sums], metric, samples, seed)
    return interval.low, interval.high
