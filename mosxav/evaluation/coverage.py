"""How often the toolkit's 95 % interval covers the truth: simulated test splits shaped like ours.

Used by ``tests/test_uncertainty.py`` (the shipped default's unit count must keep coverage near nominal)
and ``bench/interval_coverage.py`` (the table in docs/statistics.md). Two simulations:

* ``headline_coverage``: test splits of ``units`` sequences, ``frames`` frames each, five structures with
  the synthetic default's presence pattern (the vessel and contrast catheter in nearly every sequence,
  the others in some); per-sequence Dice drawn from a Beta around a structure's mean, frames around
  their sequence's; the target is the population's frame-weighted macro mean.
* ``comparison_coverage``: paired differences d[s, u] = mu + a_s + b_u + e_su over ``seeds`` x ``units``
  (seed, unit and interaction effects normal), the two-level interval's coverage of mu.
"""

from __future__ import annotations

import numpy as np

from mosxav.evaluation.uncertainty import SequenceSums, headline_interval, mean_interval

#: Per structure (vessel, contrast catheter, catheter, balloon, others): the share of sequences it is
#: in, its mean Dice over sequences, and the Beta concentration of sequence means around it.
STRUCTURES = ((1.0, 0.80, 20.0), (0.95, 0.60, 6.0), (0.4, 0.35, 4.0), (0.3, 0.25, 3.0), (0.3, 0.05, 3.0))
#: Spread of a frame's Dice around its sequence's mean.
FRAME_SD = 0.08


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
    for k in range(replications):
        interval = headline_interval([_simulated_sums(units, frames, rng)], "dice", rng_seed=k)
        hits += interval.low <= truth <= interval.high
    return hits / replications


def comparison_coverage(
    seeds: int,
    units: int,
    seed_sd: float,
    unit_sd: float = 0.05,
    residual_sd: float = 0.03,
    replications: int = 400,
    seed: int = 0,
) -> float:
    """Share of simulated (seeds x units) paired differences whose interval covers the true difference."""
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(replications):
        diff = (
            rng.normal(0, seed_sd, (seeds, 1))
            + rng.normal(0, unit_sd, (1, units))
            + rng.normal(0, residual_sd, (seeds, units))
        )
        interval = mean_interval(diff, samples=2000, rng_seed=k)
        hits += interval.low <= 0 <= interval.high
    return hits / replications


def percentile_coverage(units: int, frames: int = 25, replications: int = 400, seed: int = 0) -> float:
    """The same simulation as ``headline_coverage`` for the percentile bootstrap over sequences (the
    interval the toolkit printed before): for comparison in docs/statistics.md."""
    truth = population_headline(frames)
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(replications):
        sums = _simulated_sums(units, frames, rng)
        draws = np.random.default_rng(k).integers(0, units, size=(2000, units))
        weights = np.zeros((2000, units))
        np.add.at(weights, (np.repeat(np.arange(2000), units), draws.ravel()), 1)
        values = sums.macro("dice", weights)
        low, high = np.nanpercentile(values, [2.5, 97.5])
        hits += low <= truth <= high
    return hits / replications
