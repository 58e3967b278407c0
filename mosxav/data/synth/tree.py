"""Coronary-tree geometry: a few long, smooth, tapering branches that do not cross, and heart motion.

All geometry is in normalised image coordinates ([0, 1]^2, x right, y down) so that one seed gives
the same anatomy at every resolution; radii are in the same units (0.00195 = one pixel at 512 px,
MOSXAV's frame size). The sizes below are read off the real MOSXAV masks (``bench/synth_realism.py``):
a trunk 12-40 px wide, main vessels tapering to about 4 px, side branches of 3-8 px, few crossings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Resolution of the occupancy grid that keeps branches apart (cells per unit length).
_GRID = 256
#: Smallest distal radius (about 1.5 px at 512 px: the thinnest vessels annotated in MOSXAV).
MIN_RADIUS = 0.003


@dataclass
class Branch:
    """A sampled centreline: points (K, 2) as (x, y), radius (K,), arc length from the ostium (K,).

    ``level`` is 0 for the left main trunk, 1 for a main vessel (starting at the ostium or the trunk's
    end), 2 for a side branch."""

    points: np.ndarray
    radius: np.ndarray
    arc: np.ndarray
    level: int = 1
    opacity: np.ndarray = field(default_factory=lambda: np.ones(0))

    def __post_init__(self) -> None:
        if len(self.opacity) != len(self.points):
            self.opacity = np.ones(len(self.points))


def _walk(
    rng: np.random.Generator, start: np.ndarray, angle: float, length: float, step: float, curl: float, bend: float
) -> np.ndarray:
    """A smooth curve: a steady bend plus slowly varying curvature (low-passed twice, so no wiggles)."""
    n = max(int(length / step), 2)
    noise = rng.normal(0.0, curl, size=n)
    curvature = np.empty(n)
    state = 0.0
    for i in range(n):
        state = 0.97 * state + noise[i]
        curvature[i] = state
    curvature = np.convolve(curvature, np.ones(25) / 25, mode="same") + bend
    headings = angle + np.cumsum(curvature) * step
    steps = step * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    return start + np.concatenate([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)])


class _Occupancy:
    """A coarse grid of where the tree already is, so that a new branch stops before it would cross one."""

    def __init__(self) -> None:
        self.grid = np.zeros((_GRID, _GRID), bool)

    def _cells(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cells = np.clip((points * _GRID).astype(int), 0, _GRID - 1)
        return cells[:, 1], cells[:, 0]

    def first_collision(self, points: np.ndarray, skip: int) -> int:
        """Index of the first point after ``skip`` on an occupied cell (len if none)."""
        rows, cols = self._cells(points)
        hit = self.grid[rows, cols]
        hit[:skip] = False
        where = np.flatnonzero(hit)
        return int(where[0]) if len(where) else len(points)

    def first_exit(self, points: np.ndarray) -> int:
        """Index of the first point that leaves the frame (len if none)."""
        outside = np.flatnonzero((points < 0.03).any(axis=1) | (points > 0.97).any(axis=1))
        return int(outside[0]) if len(outside) else len(points)

    def mark(self, points: np.ndarray, radius: np.ndarray, margin: float) -> None:
        for (x, y), r in zip(points[::4], radius[::4], strict=False):
            reach = r + margin
            r0, r1 = int((y - reach) * _GRID), int((y + reach) * _GRID) + 1
            c0, c1 = int((x - reach) * _GRID), int((x + reach) * _GRID) + 1
            self.grid[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)] = True


def _grow(
    rng: np.random.Generator,
    occupancy: _Occupancy,
    start: np.ndarray,
    angle: float,
    length: float,
    r_start: float,
    r_end: float,
    arc0: float,
    step: float,
    curl: float,
    skip_length: float,
    min_length: float,
) -> Branch | None:
    """One branch, truncated where it would run into the tree (after ``skip_length``; never when that is
    negative) or out of the frame; None when what is left is shorter than ``min_length``."""
    bend = rng.normal(0.0, 1.2)
    points = _walk(rng, start, angle, length, step, curl, bend)
    stop = occupancy.first_collision(points, skip=int(skip_length / step) if skip_length >= 0 else len(points))
    stop = min(stop, occupancy.first_exit(points))
    if stop * step < min_length:
        return None
    points = points[:stop]
    frac = np.linspace(0.0, 1.0, len(points)) * (stop / max(int(length / step), 2))
    radius = np.maximum(r_start + (r_end - r_start) * frac, MIN_RADIUS)
    arc = arc0 + step * np.arange(len(points))
    return Branch(points, radius, arc)


def _sprout(
    rng: np.random.Generator,
    occupancy: _Occupancy,
    parent: Branch,
    lengths: tuple[float, float],
    taper: tuple[float, float],
    step: float,
    min_length: float,
) -> Branch | None:
    """A side branch leaving ``parent`` at 25-60 degrees, from its wall, stopping before any crossing."""
    j = int(rng.integers(len(parent.points) // 8, max(len(parent.points) * 3 // 4, len(parent.points) // 8 + 1)))
    ahead = parent.points[min(j + 5, len(parent.points) - 1)] - parent.points[max(j - 5, 0)]
    parent_heading = float(np.arctan2(ahead[1], ahead[0]))
    angle = parent_heading + rng.choice([-1.0, 1.0]) * rng.uniform(np.deg2rad(25), np.deg2rad(60))
    r_start = max(parent.radius[j] * rng.uniform(*taper), MIN_RADIUS * 1.2)
    # Start at the parent's wall so the thin branch does not carve a notch into its parent.
    start = parent.points[j] + parent.radius[j] * np.array([np.cos(angle), np.sin(angle)])
    branch = _grow(
        rng,
        occupancy,
        start,
        angle,
        rng.uniform(*lengths),
        r_start,
        max(r_start * 0.4, MIN_RADIUS),
        parent.arc[j] + parent.radius[j],
        step,
        0.4,
        # Half the side branches are drawn over the tree, as where a branch runs in front of another.
        parent.radius[j] + 0.04 if rng.random() > 0.5 else -1.0,
        min_length,
    )
    if branch is not None:
        branch.level = parent.level + 1
        occupancy.mark(branch.points, branch.radius, 0.006)
    return branch


def _interrupt(rng: np.random.Generator, branch: Branch, step: float) -> None:
    """A short stretch the annotator cannot see (a tight stenosis, foreshortening, overlap): as in
    MOSXAV, where a vessel tree is often annotated in two to four pieces."""
    n = len(branch.points)
    gap = max(int(rng.uniform(0.006, 0.02) / step), 2)
    if n < 4 * gap:
        return
    a = int(rng.integers(n // 6, n - 2 * gap))
    branch.opacity[a : a + gap] = 0.15


def make_tree(rng: np.random.Generator, step: float = 0.001) -> list[Branch]:
    """One coronary tree (one MOSXAV object): a trunk, 1-3 main vessels, side branches and twigs.

    A left-coronary pattern (short left main splitting into two or three long vessels) or a right-
    coronary one (one long vessel with side branches). Branches are grown in order of size and each
    stops where it would cross what is already there, as real side branches rarely cross.
    """
    ostium = np.array([rng.uniform(0.3, 0.6), rng.uniform(0.12, 0.3)])
    occupancy = _Occupancy()
    r_trunk = rng.uniform(0.014, 0.026) if rng.random() < 0.7 else rng.uniform(0.026, 0.042)
    heading = rng.uniform(np.deg2rad(40), np.deg2rad(140))
    left = rng.random() < 0.65
    branches: list[Branch] = []
    if left:
        trunk_points = _walk(rng, ostium, heading, rng.uniform(0.03, 0.1), step, 0.0, 0.0)
        trunk = Branch(trunk_points, np.full(len(trunk_points), r_trunk), step * np.arange(len(trunk_points)), 0)
        branches.append(trunk)
        occupancy.mark(trunk.points, trunk.radius, 0.01)
        spread = rng.uniform(np.deg2rad(50), np.deg2rad(100))
        angles = heading + np.linspace(-spread / 2, spread / 2, 2 if rng.random() < 0.7 else 3)
        starts = [(trunk.points[-1], a, r_trunk * rng.uniform(0.75, 0.9), trunk.arc[-1]) for a in angles]
    else:
        starts = [(ostium, heading, r_trunk, 0.0)]
    mains: list[Branch] = []
    for start, angle, r_start, arc0 in starts:
        r_end = max(r_start * rng.uniform(0.4, 0.6), MIN_RADIUS)
        length = rng.uniform(0.6, 1.0)
        main = _grow(rng, occupancy, start, angle, length, r_start, r_end, arc0, step, 0.25, r_trunk + 0.03, 0.06)
        if main is not None:
            occupancy.mark(main.points, main.radius, 0.006)
            mains.append(main)
    if not mains:  # every main vessel ran out of the frame at once: draw another tree
        return make_tree(rng, step)
    branches.extend(mains)
    sides = [
        _sprout(rng, occupancy, main, (0.15, 0.4), (0.45, 0.75), step, 0.06)
        for main in mains
        for _ in range(int(rng.integers(2, 4)))
    ]
    sides = [b for b in sides if b is not None]
    twigs = [
        _sprout(rng, occupancy, parent, (0.02, 0.07), (0.4, 0.6), step, 0.015)
        for parent in mains + sides
        if rng.random() < 0.15
    ]
    branches.extend(sides)
    branches.extend(b for b in twigs if b is not None)
    for branch in mains + sides:
        if rng.random() < 0.35:
            _interrupt(rng, branch, step)
    return branches


@dataclass
class Motion:
    """Cardiac motion (scaling, twist and shift about the heart centre) and respiratory translation.

    Sizes match MOSXAV: the median skeleton of a real clip moves about 2 px per frame (10 px over
    MOSXAV's 5-frame annotation stride) at 512 px.
    """

    centre: np.ndarray
    cardiac_period: float
    cardiac_amp: float
    twist_amp: float
    shift_amp: np.ndarray
    phase: float
    resp_period: float
    resp_amp: np.ndarray
    resp_phase: float

    @classmethod
    def sample(cls, rng: np.random.Generator, centre: np.ndarray) -> "Motion":
        return cls(
            centre=centre,
            cardiac_period=rng.uniform(10.0, 18.0),
            cardiac_amp=rng.uniform(0.14, 0.26),
            twist_amp=rng.uniform(0.08, 0.16),
            shift_amp=rng.uniform(-0.05, 0.05, size=2),
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
        return self.centre + rel @ rot.T + self.shift_amp * beat + self.respiratory(t)
