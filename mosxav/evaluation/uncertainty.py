"""Uncertainty over test units and trainings: the one interval and the tests the toolkit prints.

A test unit is a sequence (or an image), never a frame: frames of one video are not independent, so
every interval and test works on whole units. A training is a second source of variance: two trainings
of one method on the same data differ by as much as methods do (docs/statistics.md), so a comparison
over several seeds must see both, and a cross-validated comparison must see that each fold's units were
all predicted by one training.

**What is averaged.** A training's headline is the frame-weighted macro mean over the structures (the
metric conventions of ``mosxav.evaluation.metrics``; the leaderboard's number), a ratio of sums, not a
mean of per-unit values; an arm trained with several seeds has the mean of its trainings' headlines.
Each (seed, unit) gets its *contribution*: its jackknife pseudo-value within its seed, centred so that
the contributions average to the headline exactly (``unit_contributions``). Every interval and test
below is then the analysis of the mean of a (seeds x units) table.

**The variance of that mean** (``crossed_variance``) is the method-of-moments estimate of a crossed
random design, each variance component counted once:
var = (MS_seed + MS_unit - MS_inter) / (S U), floored at max(MS_seed, MS_unit) / (S U) (each of which
alone estimates a part of the variance), with the Satterthwaite degrees of freedom of that combination,
capped at those of the larger main-effect mean square (with a dominant seed effect the estimate is as
uncertain as MS_seed and its S - 1 degrees of freedom; without the cap 3 seeds cover 0.92).
With one seed it is the t interval over units (var = s^2 / U, df = U - 1).

**Folds** (``clusters``): in a cross-validated run every unit of a fold is predicted by the same
training, so a fold, not a unit, is the independent level: the units' contributions are summed within
each fold (scaled so the mean is kept) and the folds take the units' place in the crossed design (one
seed: the t interval over folds, df = folds - 1).

**Bounded metrics.** A Dice, IoU or NSD interval is built on the logit scale and mapped back, a
distance's on the log scale, so neither leaves the metric's range (``METRIC_RANGE``); a difference's
interval is on the metric's own scale and clipped to its range.

**Fewer than ``MIN_UNITS`` units** (or ``MIN_CLUSTERS`` folds): no interval and no rank.

**Tests.** One seed without folds: the exact paired sign-flip permutation test over units
(``paired_permutation_p``; Monte Carlo beyond 16 units, p = (k + 1) / (n + 1)). Otherwise the t test with
the interval's standard error and degrees of freedom, so a difference is significant exactly when its
interval excludes 0. A family of tests read together (the pairs a rank stands on, a study's comparisons
with its reference) is significant by Holm's adjusted p (``holm``). The coverage of all of this,
simulated at measured and at adverse variance components, is ``mosxav.evaluation.coverage`` and
docs/statistics.md.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from mosxav.evaluation.metrics import RANKED_METRICS

#: Monte Carlo draws of the sign-flip test beyond ``EXACT_SIGN_FLIP_UNITS`` units.
COMPARISON_SAMPLES = 20_000
#: Up to this many units the sign-flip test enumerates every sign pattern.
EXACT_SIGN_FLIP_UNITS = 16
#: The nominal coverage of every interval the toolkit prints.
CONFIDENCE = 0.95
#: The fewest test units with an interval and a rank: the exact sign-flip test over 5 units cannot go
#: below p = 2 / 2**5 = 0.0625, so with fewer than 6 nothing can be called different at 0.05.
MIN_UNITS = 6
#: The fewest folds of a cross-validated comparison with an interval (t over folds, df >= 3).
MIN_CLUSTERS = 4
#: The fewest seeds a verdict ("better", "worse") is given from: two values say little about a spread.
MIN_VERDICT_SEEDS = 3
#: The significance level of every rank and verdict.
ALPHA = 0.05
#: The range of each ranked metric: intervals never leave it.
METRIC_RANGE: dict[str, tuple[float, float]] = {
    "dice": (0.0, 1.0),
    "iou": (0.0, 1.0),
    "nsd": (0.0, 1.0),
    "hd95": (0.0, math.inf),
    "assd": (0.0, math.inf),
}


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval; ``low``/``high`` are NaN where there are too few units.

    ``se`` and ``df`` are those of the estimate on its own scale (what a t test and an MDE use);
    ``clusters`` is the number of folds the units were grouped in (None: none)."""

    estimate: float
    low: float
    high: float
    se: float
    df: float
    seeds: int
    units: int
    clusters: int | None = None

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
            counted = f"{self.clusters} folds" if self.clusters is not None else f"n {self.units}"
            return f"{form.format(self.estimate)} ({counted}: no interval)"
        return f"{form.format(self.estimate)} [{form.format(self.low)}, {form.format(self.high)}]"


@dataclass(frozen=True)
class VarianceEstimate:
    """The variance of a (seeds x units) table's mean and its degrees of freedom, with the mean squares
    it was made from (NaN where a level has one member)."""

    variance: float
    df: float
    ms_seed: float
    ms_unit: float
    ms_inter: float


def crossed_variance(table: np.ndarray) -> VarianceEstimate:
    """The variance of the mean of a complete (seeds x units) table under a crossed random design
    (seed, unit and interaction effects), each component counted once (module docstring)."""
    table = np.atleast_2d(np.asarray(table, float))
    seeds, units = table.shape
    grand = table.mean()
    by_seed, by_unit = table.mean(1), table.mean(0)
    ms_unit = seeds * float(((by_unit - grand) ** 2).sum()) / (units - 1) if units > 1 else np.nan
    if seeds == 1:
        return VarianceEstimate(ms_unit / units, float(units - 1), np.nan, ms_unit, np.nan)
    ms_seed = units * float(((by_seed - grand) ** 2).sum()) / (seeds - 1)
    if units == 1:
        return VarianceEstimate(ms_seed / seeds, float(seeds - 1), ms_seed, np.nan, np.nan)
    residual = table - by_seed[:, None] - by_unit[None, :] + grand
    df_seed, df_unit, df_inter = seeds - 1, units - 1, (seeds - 1) * (units - 1)
    ms_inter = float((residual**2).sum()) / df_inter
    combined = ms_seed + ms_unit - ms_inter
    floor = max(ms_seed, ms_unit)
    if combined <= floor:
        df = df_seed if ms_seed >= ms_unit else df_unit
        return VarianceEstimate(floor / (seeds * units), float(df), ms_seed, ms_unit, ms_inter)
    satterthwaite = combined**2 / (ms_seed**2 / df_seed + ms_unit**2 / df_unit + ms_inter**2 / df_inter)
    # never more degrees of freedom than the larger main-effect mean square has: with a dominant seed
    # effect the estimate is as uncertain as MS_seed (S - 1 df), whatever noise adds to the other terms
    df = min(satterthwaite, df_seed if ms_seed >= ms_unit else df_unit)
    return VarianceEstimate(combined / (seeds * units), float(df), ms_seed, ms_unit, ms_inter)


@dataclass(frozen=True)
class Components:
    """Variance components of a crossed (seeds x units) design, as standard deviations."""

    seed: float
    unit: float
    interaction: float


def variance_components(table: np.ndarray) -> Components:
    """Method-of-moments variance components of a complete (seeds x units) table (negative estimates
    set to 0): what a design's expected MDE is planned from."""
    result = crossed_variance(table)
    seeds, units = np.atleast_2d(table).shape
    inter = result.ms_inter if not np.isnan(result.ms_inter) else 0.0
    seed = max(0.0, (result.ms_seed - inter) / units) if not np.isnan(result.ms_seed) else 0.0
    unit = max(0.0, (result.ms_unit - inter) / seeds) if not np.isnan(result.ms_unit) else 0.0
    return Components(math.sqrt(seed), math.sqrt(unit), math.sqrt(inter))


def expected_mde(components: Components, seeds: int, units: int, power: float = 0.8) -> float:
    """The minimum detectable effect of a paired difference whose variance components are
    ``components``, at ``seeds`` x ``units``: (t(0.975, df) + t(power, df)) x SE, SE from the components
    and df from Satterthwaite (capped like the interval's)."""
    c = components
    parts = [(c.seed**2 / seeds, seeds - 1), (c.unit**2 / units, units - 1)]
    parts.append((c.interaction**2 / (seeds * units), (seeds - 1) * (units - 1)))
    variance = sum(v for v, _ in parts)
    denominator = sum(v * v / d for v, d in parts if d > 0 and v > 0)
    df = variance**2 / denominator if denominator > 0 else float(units - 1)
    df = min(df, seeds - 1 if c.seed**2 * units >= c.unit**2 * seeds else units - 1) if seeds > 1 else df
    df = max(df, 1.0)
    return float((stats.t.ppf(0.5 + CONFIDENCE / 2, df) + stats.t.ppf(power, df)) * math.sqrt(variance))


def seeds_for_mde(
    components: Sequence[Components], target: float, units: int, power: float = 0.8, most: int = 100
) -> int | None:
    """The fewest seeds at which the median expected MDE (``expected_mde``) of comparisons with these
    variance components is at most ``target`` at ``units`` units; None if more than ``most`` would be
    needed. Why: a study plans its seeds before its methods run, from the spread it can see then; once
    they have run, their own components say what the goal would have taken."""
    if not components:
        raise ValueError("no comparison to plan from")
    for seeds in range(2, most + 1):
        if float(np.median([expected_mde(c, seeds, units, power) for c in components])) <= target:
            return seeds
    return None


def cluster_totals(table: np.ndarray, clusters: Sequence) -> np.ndarray:
    """(seeds x units) -> (seeds x folds): each fold's sum of its units' values times folds / units, so
    the mean is kept and a fold (one training per seed) becomes the level that is resampled."""
    table = np.atleast_2d(np.asarray(table, float))
    labels = pd.Index(list(clusters))
    if len(labels) != table.shape[1]:
        raise ValueError(f"{len(labels)} fold labels for {table.shape[1]} units")
    names = sorted(set(labels))
    scale = len(names) / table.shape[1]
    return np.stack([table[:, np.asarray(labels == name)].sum(1) * scale for name in names], axis=1)


def _transform(bounds: tuple[float, float] | None) -> tuple[str, float, float]:
    if bounds is None:
        return "identity", -math.inf, math.inf
    low, high = bounds
    if math.isinf(high):
        return "log", low, high
    return "logit", low, high


def _on_scale(estimate: float, se: float, half: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """The interval ``estimate`` ± ``half`` (t x se) built on the scale that keeps it within ``bounds``."""
    kind, low, high = _transform(bounds)
    if kind == "identity" or se == 0:
        return max(low, estimate - half), min(high, estimate + half)
    if estimate <= low or estimate >= high:  # at a bound every value is that bound: nothing to spread
        return max(low, estimate - half), min(high, estimate + half)
    t = half / se
    if kind == "log":
        centre, scale_se = math.log(estimate - low), se / (estimate - low)
        return low + math.exp(centre - t * scale_se), low + math.exp(centre + t * scale_se)
    width = high - low
    p = (estimate - low) / width
    centre, scale_se = math.log(p / (1 - p)), se / (width * p * (1 - p))
    lower, upper = centre - t * scale_se, centre + t * scale_se
    return low + width / (1 + math.exp(-lower)), low + width / (1 + math.exp(-upper))


def table_interval(
    table: np.ndarray,
    clusters: Sequence | None = None,
    bounds: tuple[float, float] | None = None,
    estimate: float | None = None,
) -> Interval:
    """The interval of the mean of a complete (seeds x units) table (a vector: one seed).

    Args:
        table: values per (seed, unit): paired differences, or a headline's contributions.
        clusters: each unit's fold in a cross-validated run (None: units are independent).
        bounds: the range the quantity lives in (``METRIC_RANGE``); None for a difference.
        estimate: the estimate when it is not the table's mean (a ratio's exact value).
    """
    table = np.atleast_2d(np.asarray(table, float))
    seeds, units = table.shape
    value = float(table.mean()) if estimate is None else float(estimate)
    n_clusters = None if clusters is None else len(set(clusters))
    enough = units >= MIN_UNITS and (n_clusters is None or n_clusters >= MIN_CLUSTERS)
    if not enough or np.isnan(value) or np.isnan(table).any():
        return Interval(value, np.nan, np.nan, np.nan, np.nan, seeds, units, n_clusters)
    levels = table if clusters is None else cluster_totals(table, clusters)
    result = crossed_variance(levels)
    se = math.sqrt(max(result.variance, 0.0))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, result.df)) * se
    low, high = _on_scale(value, se, half, bounds)
    return Interval(value, low, high, se, result.df, seeds, units, n_clusters)


def mean_interval(values: np.ndarray, clusters: Sequence | None = None) -> Interval:
    """The interval of the mean of a (seeds, units) table of differences (a vector: one seed)."""
    return table_interval(values, clusters)


def difference_range(metric: str) -> tuple[float, float] | None:
    """The range a difference of ``metric`` lives in ([-1, 1] for a [0, 1] metric; None: unbounded)."""
    low, high = METRIC_RANGE.get(metric, (-math.inf, math.inf))
    return None if math.isinf(high) else (low - high, high - low)


def t_test_p(interval: Interval) -> float:
    """Two-sided p of estimate = 0 with the interval's standard error and degrees of freedom."""
    if np.isnan(interval.estimate) or interval.estimate == 0:
        return 1.0
    if not interval.defined:
        return float("nan")
    if interval.se == 0:
        return 0.0
    return float(2 * stats.t.sf(abs(interval.estimate) / interval.se, interval.df))


def crossed_t_test(values: np.ndarray, clusters: Sequence | None = None) -> float:
    """Two-sided p of mean = 0 for a (seeds, units) table of paired differences, with the interval's
    standard error and degrees of freedom (so p < 0.05 exactly when the interval excludes 0)."""
    values = np.atleast_2d(np.asarray(values, float))
    return t_test_p(table_interval(values, clusters))


def paired_permutation_p(a: np.ndarray, b: np.ndarray, samples: int = COMPARISON_SAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of mean(a - b) = 0 under sign flips of the paired differences: exact up to
    ``EXACT_SIGN_FLIP_UNITS`` units (smallest value 2 / 2**n), beyond that ``samples`` seeded draws with
    p = (k + 1) / (samples + 1), k the draws at least as extreme (never 0)."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    diff = diff[~np.isnan(diff)]
    if diff.size == 0 or np.allclose(diff, 0):
        return 1.0
    observed = abs(diff.mean())
    if diff.size <= EXACT_SIGN_FLIP_UNITS:
        signs = np.array(list(itertools.product((-1, 1), repeat=diff.size)))
        return float(np.mean(np.abs((signs * diff).mean(1)) >= observed - 1e-12))
    signs = np.random.default_rng(seed).choice((-1, 1), size=(samples, diff.size))
    extreme = int((np.abs((signs * diff).mean(1)) >= observed - 1e-12).sum())
    return (extreme + 1) / (samples + 1)


@dataclass(frozen=True)
class PairedComparison:
    """``method - reference`` over paired (seed, unit) cells: what ``compare`` and the report print."""

    interval: Interval
    p: float
    test: str  # "sign-flip over units", "t over seeds and units", "t over folds", ...
    per_seed: tuple[float, ...]  # the mean difference within each seed
    method_mean: float
    reference_mean: float
    better: int  # units where the seed-averaged difference is above 0
    worse: int

    @property
    def significant(self) -> bool:
        return not np.isnan(self.p) and self.p < ALPHA and self.interval.excludes_zero()


def minimum_detectable_effect(interval: Interval, power: float = 0.8, alpha: float = 1 - CONFIDENCE) -> float:
    """The difference a comparison with this standard error and df finds with ``power`` at a two-sided
    ``alpha`` level: (t(1 - alpha / 2, df) + t(power, df)) x SE (NaN without an interval). Read in a
    family of m tests (Holm), ``alpha`` / m bounds what the first to separate needs."""
    if not interval.defined:
        return float("nan")
    return float((stats.t.ppf(1 - alpha / 2, interval.df) + stats.t.ppf(power, interval.df)) * interval.se)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of one family's p values (the values of R's ``p.adjust(p, "holm")``):
    a test of the family is significant where its adjusted p is under ``ALPHA``, and the chance that any
    true null of the family is rejected stays at most ``ALPHA`` whatever the dependence between the tests.

    Why: ranking k methods takes k (k - 1) / 2 tests and a study's comparisons with its reference k - 1;
    each at 0.05 alone, some pair of methods that do not differ would separate in most studies
    (``mosxav.evaluation.coverage.family_error``). A NaN p (no test) counts in the family as 1 and stays NaN.
    """
    p = np.asarray(p_values, float)
    filled = np.where(np.isnan(p), 1.0, p)
    order = np.argsort(filled, kind="stable")
    steps = (len(p) - np.arange(len(p))) * filled[order]
    adjusted = np.empty(len(p))
    adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return np.where(np.isnan(p), np.nan, adjusted).tolist()


def verdict(result: PairedComparison, margin: float = 0.01, p_family: float | None = None) -> str:
    """docs/diffproto.md's rule: ``"better"`` when the difference is at least ``margin``, positive in
    every seed and its interval above 0; ``"worse"`` mirrored; ``"no detectable effect"`` otherwise.
    Fewer than ``MIN_VERDICT_SEEDS`` seeds give no verdict at all: ``"too few seeds"``. A comparison
    read as one of a family passes its Holm-adjusted p (``holm``) as ``p_family``, which must be under
    ``ALPHA`` as well."""
    interval = result.interval
    if interval.seeds < MIN_VERDICT_SEEDS:
        return "too few seeds"
    if not interval.defined or (p_family is not None and not p_family < ALPHA):
        return "no detectable effect"
    if interval.estimate >= margin and all(v > 0 for v in result.per_seed) and interval.low > 0:
        return "better"
    if interval.estimate <= -margin and all(v < 0 for v in result.per_seed) and interval.high < 0:
        return "worse"
    return "no detectable effect"


def _test_name(seeds: int, clusters: Sequence | None) -> str:
    if clusters is None:
        return "sign-flip over units" if seeds == 1 else "t over seeds and units"
    return "t over folds" if seeds == 1 else "t over seeds and folds"


def paired_comparison(
    values: np.ndarray,
    reference: np.ndarray,
    clusters: Sequence | None = None,
    estimate: float | None = None,
    means: tuple[float, float] | None = None,
    bounds: tuple[float, float] | None = None,
) -> PairedComparison:
    """Compare two (seeds, units) tables paired cell by cell (a seed of one method with the same seed of
    the other: same partition, same batches; units where either is NaN are dropped).

    Args:
        values, reference: per (seed, unit) values (per-unit scores or headline contributions).
        clusters: each unit's fold in a cross-validated run (the folds become the resampled level).
        estimate: the difference when it is not the mean of ``values - reference`` (two ratios).
        means: (method, reference) headlines when they are not the tables' means.
        bounds: the range of the difference (``difference_range``): its interval is clipped to it.
    """
    values, reference = np.atleast_2d(np.asarray(values, float)), np.atleast_2d(np.asarray(reference, float))
    keep = ~(np.isnan(values) | np.isnan(reference)).any(0)
    values, reference = values[:, keep], reference[:, keep]
    if clusters is not None:
        clusters = [c for c, k in zip(clusters, keep, strict=True) if k]
    diff = values - reference
    interval = table_interval(diff, clusters, None, estimate)
    if bounds is not None and interval.defined:
        interval = replace(interval, low=max(bounds[0], interval.low), high=min(bounds[1], interval.high))
    seeds = diff.shape[0]
    if seeds == 1 and clusters is None:
        p = paired_permutation_p(values[0], reference[0]) if interval.defined else float("nan")
    else:
        p = t_test_p(interval)
    by_unit = diff.mean(0)
    method_mean, reference_mean = means if means is not None else (np.nan, np.nan)
    if means is None and values.size:
        method_mean, reference_mean = float(values.mean()), float(reference.mean())
    return PairedComparison(
        interval=interval,
        p=p,
        test=_test_name(seeds, clusters),
        per_seed=tuple(float(v) for v in diff.mean(1)) if diff.size else (),
        method_mean=method_mean,
        reference_mean=reference_mean,
        better=int((by_unit > 0).sum()),
        worse=int((by_unit < 0).sum()),
    )


def unit_contributions(sums: np.ndarray, counts: np.ndarray) -> tuple[float, np.ndarray]:
    """The headline of (seeds, units, classes) metric sums and evaluated-frame counts, and each (seed,
    unit)'s contribution to it.

    A training's headline is the frame-weighted macro mean over the classes it evaluated (the
    leaderboard's number); an arm's is the mean of its trainings'. A unit's contribution within its
    seed is its jackknife pseudo-value, centred so that the contributions of a seed average to that
    seed's headline exactly: θ_s + (U - 1) (mean_v θ_s(-v) - θ_s(-u)), θ_s(-u) the headline without unit
    u. For a mean of per-unit values it is the unit's value; for the ratio it also carries what a unit
    does to the macro mean by bringing in a structure few units have, which a first-order expansion
    misses (and with it, coverage at small unit counts: docs/statistics.md).
    """
    sums, counts = np.asarray(sums, float), np.asarray(counts, float)
    seeds, units = sums.shape[:2]
    if seeds == 0 or units == 0:
        return float("nan"), np.full((seeds, units), np.nan)
    totals, frames = sums.sum(1), counts.sum(1)  # (seeds, classes)
    per_seed = _macro(totals, frames)
    if np.isnan(per_seed).any():
        return float("nan"), np.full((seeds, units), np.nan)
    if units < 2:
        return float(per_seed.mean()), np.repeat(per_seed[:, None], units, axis=1)
    left_out = _macro(totals[:, None] - sums, frames[:, None] - counts)  # (seeds, units)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmean(left_out, axis=1, keepdims=True)
    contributions = per_seed[:, None] + (units - 1) * (centre - left_out)
    return float(per_seed.mean()), contributions


@dataclass
class SequenceSums:
    """Per sequence and class: metric sums over evaluated frames and their counts.

    Enough to recompute any frame-weighted mean over a subset of sequences, and each sequence's
    contribution to it."""

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
        metrics = [m for m in RANKED_METRICS if m in frames.columns]
        sums = {
            m: evaluated.pivot_table(index="sequence", columns="class_id", values=m, aggfunc="sum")
            .reindex(index=sequences, columns=classes)
            .fillna(0)
            .to_numpy()
            for m in metrics
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
        """Each sequence's own frame-weighted macro mean (what a team sees per sequence)."""
        return self.macro(metric, np.eye(len(self.sequences)))

    def contributions(self, metric: str = "dice") -> np.ndarray:
        """Each sequence's contribution to the headline (``unit_contributions``): they average to it."""
        return unit_contributions(self.sums[metric][None], self.counts[None])[1][0]


def _macro(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, C) weighted sums and counts -> (B,) macro means over the classes evaluated in each draw."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = totals / counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw without any evaluated class: NaN
        return np.nanmean(np.where(counts > 0, per_class, np.nan), axis=-1)


def stacked(seeds: Sequence[SequenceSums], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, units, classes) sums and counts of one arm's trainings, scored on the same sequences."""
    first = seeds[0]
    for other in seeds[1:]:
        if other.sequences != first.sequences or other.classes != first.classes:
            raise ValueError("seeds of one arm must be scored on the same sequences and classes")
    return np.stack([s.sums[metric] for s in seeds]), np.stack([s.counts for s in seeds])


def headline_interval(seeds: Sequence[SequenceSums], metric: str, clusters: Sequence | None = None) -> Interval:
    """The interval of the mean over the trainings ``seeds`` (each a ``SequenceSums`` of the same
    sequences and classes) of their frame-weighted macro ``metric``: the contributions' mean over seeds
    and units (``clusters``: each sequence's fold), on the metric's bounded scale; with one training it
    covers test-unit variation only."""
    sums, counts = stacked(seeds, metric)
    estimate, contributions = unit_contributions(sums, counts)
    return table_interval(contributions, clusters, METRIC_RANGE.get(metric), estimate)


def sequence_interval(sums: SequenceSums, metric: str) -> tuple[float, float]:
    """The 95 % interval of one training's headline ``metric`` over its test sequences (NaN when the
    metric is never evaluated or there are fewer than ``MIN_UNITS`` sequences)."""
    interval = headline_interval([sums], metric)
    return interval.low, interval.high
