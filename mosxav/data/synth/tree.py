"""Coronary-tree geometry: branching, tapering centrelines with arc length from the ostium.

All geometry is in normalised image coordinates ([0, 1]^2, x right, y down) so that one seed
gives the same anatomy at every resolution; radii are in the same units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Branch:
    """A sampled centreline: points (K, 2) as (x, y), radius (K,), arc length from the ostium (K,)."""

    points: np.ndarray
    radius: np.ndarray
    arc: np.ndarray
    instance: int


def _walk(
    rng: np.random.Generator,
    start: np.ndarray,
    angle: float,
    length: float,
    r0: float,
    r1: float,
    arc0: float,
    step: float,
    curl: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth random walk: the heading changes by correlated noise, the radius tapers linearly."""
    n = max(int(length / step), 2)
    turn = 0.0
    points = np.empty((n, 2))
    point = start.astype(float).copy()
    for i in range(n):
        points[i] = point
        turn = 0.85 * turn + rng.normal(0.0, curl)
        angle += turn
        point = point + step * np.array([np.cos(angle), np.sin(angle)])
    frac = np.linspace(0.0, 1.0, n)
    radius = r0 + (r1 - r0) * frac
    arc = arc0 + step * np.arange(n)
    return points, radius, arc


def make_tree(rng: np.random.Generator, n_instances: int, step: float = 0.002) -> list[Branch]:
    """A left-coronary-like tree: ``n_instances`` major branches (one object id each) with side branches.

    Major branches leave the ostium (or an earlier major branch) in a downward fan; each carries
    2-4 thinner side branches that share its object id, as MOSXAV annotates whole branches.
    """
    ostium = np.array([rng.uniform(0.3, 0.6), rng.uniform(0.12, 0.28)])
    branches: list[Branch] = []
    fan = np.sort(rng.uniform(np.deg2rad(15), np.deg2rad(165), size=n_instances))
    for k in range(n_instances):
        if k == 0 or rng.random() < 0.5:
            start, arc0, r0 = ostium, 0.0, rng.uniform(0.008, 0.012)
        else:
            parent = branches[rng.integers(0, len(branches))]
            j = rng.integers(len(parent.points) // 8, max(len(parent.points) // 2, len(parent.points) // 8 + 1))
            start, arc0, r0 = parent.points[j], parent.arc[j], parent.radius[j] * rng.uniform(0.6, 0.85)
        length = rng.uniform(0.35, 0.75)
        pts, rad, arc = _walk(rng, start, fan[k], length, r0, r0 * rng.uniform(0.25, 0.4), arc0, step, 0.012)
        branches.append(Branch(pts, rad, arc, k + 1))
        for _ in range(rng.integers(2, 5)):
            j = rng.integers(len(pts) // 6, len(pts) * 4 // 5)
            side = fan[k] + rng.choice([-1, 1]) * rng.uniform(np.deg2rad(30), np.deg2rad(70))
            # Start at the parent's wall so the thin branch does not carve a notch into its parent.
            offset = rad[j] * np.array([np.cos(side), np.sin(side)])
            s_pts, s_rad, s_arc = _walk(
                rng,
                pts[j] + offset,
                side,
                rng.uniform(0.08, 0.25),
                rad[j] * rng.uniform(0.5, 0.7),
                rad[j] * 0.25,
                arc[j] + rad[j],
                step,
                0.02,
            )
            branches.append(Branch(s_pts, s_rad, s_arc, k + 1))
    return branches


@dataclass
class Motion:
    """Smooth cardiac (scaling + twist about the heart centre) and respiratory (translation) motion."""

    centre: np.ndarray
    cardiac_period: float
    cardiac_amp: float
    twist_amp: float
    phase: float
    resp_period: float
    resp_amp: np.ndarray
    resp_phase: float

    @classmethod
    def sample(cls, rng: np.random.Generator, centre: np.ndarray) -> "Motion":
        return cls(
            centre=centre,
            cardiac_period=rng.uniform(10.0, 18.0),
            cardiac_amp=rng.uniform(0.03, 0.08),
            twist_amp=rng.uniform(0.02, 0.06),
            phase=rng.uniform(0, 2 * np.pi),
            resp_period=rng.uniform(40.0, 80.0),
            resp_amp=rng.uniform(-0.03, 0.03, size=2),
            resp_phase=rng.uniform(0, 2 * np.pi),
        )

    def respiratory(self, t: float) -> np.ndarray:
        return self.resp_amp * np.sin(2 * np.pi * t / self.resp_period + self.resp_phase)

    def apply(self, points: np.ndarray, t: float) -> np.ndarray:
        """Move heart-bound points (vessels, balloon) to their position at frame ``t``."""
        beat = np.sin(2 * np.pi * t / self.cardiac_period + self.phase)
        scale = 1.0 - self.cardiac_amp * beat
        angle = self.twist_amp * beat
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        rel = (points - self.centre) * scale
        return self.centre + rel @ rot.T + self.respiratory(t)
