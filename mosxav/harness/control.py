"""The positive control of a comparative run: a difference known to exist, and whether the run saw it.

Every label of the training split (``fully_supervised``) against the labeled fraction alone
(``supervised``) is a gain a semi-supervised method can at most approach: if a design cannot tell these
two apart, its "no detectable difference" between methods says nothing about the methods, and it ranks
nothing. The control is read on the primary endpoint, the vessel Dice (the structure every test unit
holds; the rare structures are a lottery at CPU schedules), paired by seed and test unit like every
other comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mosxav.constants import CLASS_NAMES
from mosxav.evaluation.uncertainty import PairedComparison, minimum_detectable_effect
from mosxav.harness.arms import paired_arms

#: The arms of the control: every training label, and the bound of the run's labeled fraction.
UPPER, LOWER = "fully_supervised", "supervised"
#: The primary endpoint's class id (MOSXAV's vessel; a pairs folder's foreground).
PRIMARY_CLASS = 1


@dataclass(frozen=True)
class Control:
    """``fully_supervised`` - ``supervised`` at one labeled fraction, on the primary endpoint."""

    labeled_fraction: float
    comparison: PairedComparison

    @property
    def detected(self) -> bool:
        return self.comparison.significant and self.comparison.interval.estimate > 0

    @property
    def mde(self) -> float:
        return minimum_detectable_effect(self.comparison.interval)

    def sentence(self) -> str:
        """One line a reader can act on: the gap, its interval and test, and what follows from it."""
        c = self.comparison
        gap = (
            f"fully supervised - supervised ({self.labeled_fraction:g} labels), "
            f"{CLASS_NAMES[PRIMARY_CLASS]} Dice: {c.interval.text(signed=True)}, p {_p(c.p)} ({c.test})"
        )
        if self.detected:
            return f"Positive control detected: {gap}."
        return (
            f"Positive control NOT detected: {gap}. The design cannot see a difference known to exist, so "
            "a difference it does not find between methods is no finding, and it ranks nothing."
        )


def _p(p: float) -> str:
    return "–" if np.isnan(p) else (f"{p:.3g}" if p >= 1e-4 else "< 1e-4")


def controls(frames: pd.DataFrame) -> list[Control]:
    """The run's controls: one per labeled fraction at which ``supervised`` ran, when ``fully_supervised``
    ran too (at label noise 0, the clean control); empty when either is missing."""
    clean = frames[np.isclose(frames["label_noise"], 0.0)]
    upper = clean[clean["method"] == UPPER]
    if upper.empty:
        return []
    found = []
    for fraction, lower in clean[clean["method"] == LOWER].groupby("labeled_fraction", sort=True):
        if not (lower["class_id"] == PRIMARY_CLASS).any():
            continue
        try:
            comparison = paired_arms(upper, lower, "dice", [PRIMARY_CLASS])
        except ValueError:  # no seed or unit in common
            continue
        found.append(Control(float(fraction), comparison))
    return found


def undetected_fractions(frames: pd.DataFrame) -> set[float]:
    """Labeled fractions whose control ran and was not detected: nothing is ranked there."""
    return {c.labeled_fraction for c in controls(frames) if not c.detected}
