"""One synthetic angiography sequence: contrast dynamics, devices, motion and X-ray image formation.

Image formation follows Beer-Lambert: transmission = exp(-(background + vessels + devices)),
blurred by the detector, then Poisson (quantum) noise at a per-sequence dose. Vessels attenuate in
proportion to chord length x contrast fill, so thin distal branches are faint and noisy, as in real
angiograms. Masks mark what an annotator sees: vessel pixels whose contrast fill is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mosxav.data.synth.anatomy import Anatomy
from mosxav.data.synth.raster import rasterise_tube, resample_polyline
from mosxav.data.synth.tree import Branch, Motion, make_tree

#: Attenuation per pixel of path at 512x512 (so the look does not depend on the output size).
MU_CONTRAST = 0.07
MU_CATHETER_WALL = 0.09
MU_WIRE = 0.25
VISIBLE_FILL = 0.3


@dataclass
class Device:
    """A tube-like object that is not a coronary branch: catheter, wire, balloon or foreign body."""

    cls: int
    points: np.ndarray  # normalised (x, y)
    radius: float
    mu: float
    heart_weight: np.ndarray  # 0 = moves with breathing only, 1 = moves with the heart


def _curve(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, bend: float, n: int = 400) -> np.ndarray:
    """A quadratic Bezier from start to end with a random sideways bend."""
    mid = (start + end) / 2 + rng.normal(0, bend, size=2)
    s = np.linspace(0, 1, n)[:, None]
    return (1 - s) ** 2 * start + 2 * (1 - s) * s * mid + s**2 * end


class SequenceRenderer:
    """Samples one patient/run from ``rng`` and renders its frames on demand (deterministic)."""

    def __init__(self, rng: np.random.Generator, size: int, n_frames: int, n_instances: int, with_others: bool) -> None:
        self.size = size
        self.n_frames = n_frames
        self.anatomy = Anatomy.sample(rng, size)
        self.branches: list[Branch] = make_tree(rng, n_instances, step=0.001)
        self.n_instances = n_instances
        ostium = self.branches[0].points[0]
        self.motion = Motion.sample(rng, centre=np.array([ostium[0], ostium[1] + 0.25]))
        max_arc = max(b.arc[-1] for b in self.branches)
        self.t0 = rng.uniform(0, n_frames * 0.15)
        self.speed = max_arc / rng.uniform(6, 14)
        self.washout_start = rng.uniform(0.6, 0.85) * n_frames
        self.washout_tau = rng.uniform(4, 12)
        self.dose = rng.uniform(250, 1000)
        self.devices = self._sample_devices(rng, ostium, with_others)
        self.noise_rng_seed = int(rng.integers(2**31))

    def _sample_devices(self, rng: np.random.Generator, ostium: np.ndarray, with_others: bool) -> list[Device]:
        devices = []
        if rng.random() < 0.85:  # contrast-filled guiding catheter from the top border to the ostium
            start = np.array([rng.uniform(0.2, 0.8), -0.05])
            pts = _curve(rng, start, ostium, 0.08)
            devices.append(
                Device(
                    2, pts, rng.uniform(0.004, 0.006), MU_CATHETER_WALL + MU_CONTRAST, np.linspace(0, 1, len(pts)) ** 3
                )
            )
        if rng.random() < 0.5:  # a second catheter or pacing lead, no contrast
            side = rng.integers(4)
            start = [
                np.array([rng.uniform(0, 1), -0.05]),
                np.array([1.05, rng.uniform(0, 1)]),
                np.array([rng.uniform(0, 1), 1.05]),
                np.array([-0.05, rng.uniform(0, 1)]),
            ][side]
            end = rng.uniform(0.25, 0.75, size=2)
            pts = _curve(rng, start, end, 0.15)
            devices.append(Device(3, pts, rng.uniform(0.002, 0.0035), MU_WIRE, np.linspace(0, 0.5, len(pts))))
        if rng.random() < 0.25:  # an inflated balloon on a major branch
            branch = self.branches[int(rng.integers(self.n_instances))]
            n = len(branch.points)
            a = int(rng.integers(n // 5, max(n // 2, n // 5 + 1)))
            length = int(0.04 / 0.001)
            seg = branch.points[a : a + length]
            if len(seg) > 5:
                devices.append(Device(4, seg, float(branch.radius[a]) * 1.8, MU_CONTRAST * 1.3, np.ones(len(seg))))
        if with_others:
            for _ in range(rng.integers(1, 4)):  # sternal wires / clips: small radiopaque loops
                centre = rng.uniform(0.15, 0.85, size=2)
                theta = np.linspace(0, 2 * np.pi, 200)
                ax, ay = rng.uniform(0.01, 0.03, size=2)
                pts = centre + np.stack([ax * np.cos(theta), ay * np.sin(theta)], axis=1)
                devices.append(Device(5, pts, rng.uniform(0.002, 0.004), MU_WIRE * 1.5, np.zeros(len(pts))))
        return devices

    def fill(self, arc: np.ndarray, t: float) -> np.ndarray:
        """Contrast fill in [0, 1] along the tree: a front moving from the ostium, then wash-out."""
        front = self.speed * (t - self.t0)
        wash = 1.0 if t < self.washout_start else float(np.exp(-(t - self.washout_start) / self.washout_tau))
        return wash / (1.0 + np.exp(-(front - arc) / 0.02))

    def _moved(self, points: np.ndarray, t: float, heart_weight: np.ndarray | float = 1.0) -> np.ndarray:
        heart = self.motion.apply(points, t)
        breath = points + self.motion.respiratory(t)
        w = np.asarray(heart_weight, dtype=float).reshape(-1, 1) if np.ndim(heart_weight) else heart_weight
        return w * heart + (1 - w) * breath

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``t`` as (uint8 image, semantic class mask, instance id mask)."""
        n = self.size
        px = n  # normalised -> pixels
        scale512 = 512.0 / n  # chord lengths expressed at 512 px so contrast is size-independent
        att = self.anatomy.attenuation(self.motion.respiratory(t))
        semantic = np.zeros((n, n), np.uint8)
        strength = np.zeros((self.n_instances + 1, n, n), np.float32)
        visible_any = np.zeros((n, n), bool)
        for inst in range(1, self.n_instances + 1):
            parts = [b for b in self.branches if b.instance == inst]
            pts = np.concatenate([self._moved(b.points, t) for b in parts]) * px
            rad = np.concatenate([b.radius for b in parts]) * px
            fill = np.concatenate([self.fill(b.arc, t) for b in parts])
            field = rasterise_tube(pts, rad, fill.astype(np.float32), (n, n))
            att += MU_CONTRAST * scale512 * field.chord * field.value
            visible = field.inside & (field.value >= VISIBLE_FILL)
            strength[inst] = np.where(visible, field.chord * field.value + 1e-3, 0.0)
            visible_any |= visible
        instance = np.argmax(strength, axis=0).astype(np.uint8)
        semantic[visible_any] = 1
        for device in sorted(self.devices, key=lambda d: d.cls):
            pts = resample_polyline(self._moved(device.points, t, device.heart_weight) * px, 0.5)
            rad = np.full(len(pts), device.radius * px)
            field = rasterise_tube(pts, rad, np.ones(len(pts), np.float32), (n, n))
            att += device.mu * scale512 * field.chord
            semantic[field.inside] = device.cls
        transmission = np.exp(-att)
        transmission = ndimage.gaussian_filter(transmission, 0.6 * n / 512)
        noise_rng = np.random.default_rng([self.noise_rng_seed, t])
        counts = noise_rng.poisson(self.dose * transmission) / self.dose
        gain = 0.95 * np.exp(self.anatomy.density)
        image = np.clip(255.0 * gain * counts, 0, 255).astype(np.uint8)
        return image, semantic, instance
