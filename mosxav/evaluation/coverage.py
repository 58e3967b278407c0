"""How often the toolkit's 95 % interval covers the truth, and how often its test rejects a true null:
simulated studies shaped like ours.

Used by ``tests/test_uncertainty.py`` and by ``scripts/results_tables.py`` (the coverage tables of
docs/statistics.md). Three simulations:

* ``headline_coverage``: one training's test split of ``units`` sequences, ``frames`` frames each, five
  structures with the synthetic default's presence pattern (the vessel and contrast catheter in nearly
  every sequence, the others in some); per-sequence Dice drawn from a Beta around a structure's mean,
  frames around their sequence's; the target is the population's frame-weighted macro mean.
* ``crossed_coverage``: paired differences d[s, u] = mu + a_s + b_u + c_su over ``seeds`` x ``units``
  (seed, unit and seed x unit interaction effects, normal): the interval's coverage of mu and, at
  mu = 0, the test's rejection rate.
* ``fold_coverage``: a cross-validated comparison, ``folds`` folds of ``per_fold`` images, one seed or
  several: each (seed, fold) is one training with its own effect, each image its own.
* ``family_error``: ``methods`` arms that do not differ, every pair tested: how often some pair
  separates, each test at 0.05 alone and with Holm's adjustment (what a rank stands on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosxav.evaluation.uncertainty import SequenceSums, headline_interval, holm, mean_interval, t_test_p

#: Per structure (vessel, contrast catheter, catheter, balloon, others): the share of sequences it is
#: in, its mean Dice over sequences, and the Beta concentration of sequence means around it.
STRUCTURES = ((1.0, 0.80, 20.0), (0.95, 0.60, 6.0), (0.4, 0.35, 4.0), (0.3, 0.25, 3.0), (0.3, 0.05, 3.0))
#: Spread of a frame's Dice around its sequence's mean.
FRAME_SD = 0.08
#: Variance components (SD) of paired differences measured on committed studies (docs/statistics.md):
#: the noisy pseudo-label study's macro Dice (seed, unit, interaction), and an adverse case where the
#: seed effect dominates (few labeled frames: which frames are labeled moves every unit).
MEASURED_COMPONENTS = (0.010, 0.030, 0.080)
LARGE_SEED_COMPONENTS = (0.060, 0.050, 0.030)


def _simulated_sums(units: int, frames: int, rng: np.random.Generator) -> SequenceSums:
    classes = list(range(1, len(STRUCTURES) + 1))
    sums = np.zeros((units, len(STRUCTURES)))
    counts = np.zeros((units, len(STRUCTURES)))
    for c, (share, mean, concentration) in enumerate(STRUCTURES):
        present = rng.random(units) < share
        seq_means = rng.beta(mean * concentration, (1 - mean) * concentration, units)
        values = np.clip(seq_means[:, None] + rng.normal(0, FRAME_SD, (units, frames)), 0, 1)
        sums[:, c] = np.where(present, values.sum(1), 0)
        counts[:, c] = np.where(present, frames, 0)
    data = {m: sums for m in ("dice", "iou", "hd95", "assd")}
    return SequenceSums([f"v{i:02d}" for i in range(units)], classes, data, counts)


def population_headline(frames: int, units: int = 200_000, seed: int = 12345) -> float:
    """The frame-weighted macro mean of a very large split: the target the intervals should cover."""
    return _simulated_sums(units, frames, np.random.default_rng(seed)).headline("dice")


def headline_coverage(units: int, frames: int = 25, replications: int = 400, seed: int = 0) -> float:
    """Share of simulated one-training test splits whose headline interval covers the population value."""
    truth = population_headline(frames)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(replications):
        interval = headline_interval([_simulated_sums(units, frames, rng)], "dice")
        hits += interval.low <= truth <= interval.high
    return hits / replications


@dataclass(frozen=True)
class Operating:
    """What a simulated design does: the interval's coverage and the test's rejection rate of a true
    null at 5 %."""

    coverage: float
    type_i_error: float


def crossed_coverage(
    seeds: int,
    units: int,
    components: tuple[float, float, float] = MEASURED_COMPONENTS,
    replications: int = 2000,
    seed: int = 0,
) -> Operating:
    """Coverage and type I error over simulated (seeds x units) paired differences with true mean 0 and
    ``components`` = (seed SD, unit SD, interaction SD)."""
    seed_sd, unit_sd, inter_sd = components
    rng = np.random.default_rng(seed)
    hits = rejections = 0
    for _ in range(replications):
        diff = (
            rng.normal(0, seed_sd, (seeds, 1))
            + rng.normal(0, unit_sd, (1, units))
            + rng.normal(0, inter_sd, (seeds, units))
        )
        interval = mean_interval(diff)
        hits += interval.low <= 0 <= interval.high
        rejections += t_test_p(interval) < 0.05
    return Operating(hits / replications, rejections / replications)


def fold_coverage(
    folds: int,
    per_fold: int,
    seeds: int = 1,
    training_sd: float = 0.03,
    image_sd: float = 0.06,
    replications: int = 2000,
    seed: int = 0,
) -> Operating:
    """Coverage and type I error of a cross-validated comparison: differences d[s, image] = t_(s, fold) +
    e_(s, image), one training effect per (seed, fold) shared by the fold's images; true mean 0."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(folds), per_fold)
    hits = rejections = 0
    for _ in range(replications):
        training = rng.normal(0, training_sd, (seeds, folds))[:, labels]
        diff = training + rng.normal(0, image_sd, (seeds, folds * per_fold))
        interval = mean_interval(diff, clusters=labels)
        hits += interval.low <= 0 <= interval.high
        rejections += t_test_p(interval) < 0.05
    return Operating(hits / replications, rejections / replications)


def units_only_fold_error(
    folds: int, per_fold: int, training_sd: float = 0.03, image_sd: float = 0.06, replications: int = 2000
) -> float:
    """The type I error of treating a cross-validated run's images as independent units (what a test
    that ignores the folds rejects at 5 % when nothing differs): for docs/statistics.md."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(folds), per_fold)
    rejections = 0
    for _ in range(replications):
        diff = rng.normal(0, training_sd, folds)[labels] + rng.normal(0, image_sd, folds * per_fold)
        rejections += t_test_p(mean_interval(diff)) < 0.05
    return rejections / replications


@dataclass(frozen=True)
class FamilyError:
    """How often a family of true nulls yields at least one rejection: each test at 0.05 alone, and
    with Holm's adjustment."""

    unadjusted: float
    holm: float


def family_error(
    methods: int,
    seeds: int,
    units: int,
    components: tuple[float, float, float] = MEASURED_COMPONENTS,
    replications: int = 500,
    seed: int = 0,
) -> FamilyError:
    """``methods`` arms over ``seeds`` x ``units`` with no difference between them, every pair compared
    (paired by seed and unit): the share of studies in which some pair separates. ``components`` are those
    of a paired difference (seed, unit, interaction SD); each arm draws its own seed and interaction
    effects at SD / sqrt(2), so a pair's difference has them, and shares the units' effect (paired away)."""
    seed_sd, _, inter_sd = (c / np.sqrt(2) for c in components)
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a in range(methods) for b in range(a + 1, methods)]
    any_alone = any_holm = 0
    for _ in range(replications):
        arms = rng.normal(0, seed_sd, (methods, seeds, 1)) + rng.normal(0, inter_sd, (methods, seeds, units))
        p = [t_test_p(mean_interval(arms[a] - arms[b])) for a, b in pairs]
        any_alone += min(p) < 0.05
        any_holm += min(holm(p)) < 0.05
    return FamilyError(any_alone / replications, any_holm / replications)
