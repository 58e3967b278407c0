"""A cell of the run matrix: what every part of the harness (training, parallel runs, merge, the
report, the leaderboard's reference runs) names a trained-and-scored configuration by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """One trained-and-scored configuration of the run matrix."""

    method: str
    labeled_fraction: float
    label_noise: float
    seed: int
    fold: int | None = None  # the test fold of a cross-validated dataset

    @property
    def tag(self) -> str:
        """The cell's folder below ``work/`` and ``submissions/``."""
        tag = f"{self.method}/frac{self.labeled_fraction:g}/noise{self.label_noise:g}/seed{self.seed}"
        return tag if self.fold is None else f"{tag}/fold{self.fold}"
