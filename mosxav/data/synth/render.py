"""One synthetic angiography sequence: its objects, contrast dynamics, motion and X-ray image formation.

Objects are what MOSXAV annotates as one instance id: the vessel tree, each contrast catheter,
catheter or guidewire, each balloon or marker blob, each foreign body ("others", test only). Some
enter late (a guidewire advancing, a balloon inflating), which the ``*_first_mask.json`` follows.

Image formation follows Beer-Lambert: transmission = exp(-(background + vessels + devices)),
blurred by the detector, then Poisson (quantum) noise at a per-sequence dose. Vessels attenuate in
proportion to chord length x contrast fill, so thin distal branches are faint and noisy, as in real
angiograms. Masks mark what an annotator sees: vessel pixels whose contrast fill is visible, devices
where they are; where objects overlap, the one drawn later (devices over vessels) owns the pixel in
both the semantic and the instance mask, so the two always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mosxav.constants import BALLOON, CATHETER, CONTRAST_CATHETER, OTHERS, VESSEL
from mosxav.data.synth.anatomy import Anatomy
from mosxav.data.synth.raster import rasterise_tube, resample_polyline
from mosxav.data.synth.tree import Branch, Motion, make_tree

#: Attenuation per pixel of path at 512x512 (so the look does not depend on the output size).
MU_CONTRAST = 0.07
MU_CATHETER_WALL = 0.09
MU_WIRE = 0.25
VISIBLE_FILL = 0.3
#: One pixel at MOSXAV's 512 px, in normalised units.
PX = 1.0 / 512


@dataclass
class Device:
    """An object that is not the vessel tree: catheter, guidewire, balloon, marker or foreign body."""

    cls: int
    points: np.ndarray  # normalised (x, y) centreline, resampled densely
    radius: np.ndarray  # normalised, per point
    mu: float
    heart_weight: np.ndarray | float  # 0 = moves with breathing only, 1 = moves with the heart
    enters: float = 0.0  # first frame on which it is there
    advance: float = 0.0  # normalised length per frame by which a tip advances (0: all there at once)

    def visible_points(self, t: float) -> slice | None:
        """Which centreline samples are there at frame ``t`` (None: not yet)."""
        if t < self.enters:
            return None
        if self.advance <= 0:
            return slice(None)
        length = self.advance * (t - self.enters + 1)
        step = np.linalg.norm(np.diff(self.points[:2], axis=0)) if len(self.points) > 1 else 1.0
        return slice(0, max(int(length / max(float(step), 1e-6)), 2))


def _bezier(control: np.ndarray, n: int = 400) -> np.ndarray:
    """A Bezier curve through ``control`` (K, 2) sampled at ``n`` points (de Casteljau)."""
    s = np.linspace(0.0, 1.0, n)[:, None, None]
    points = np.broadcast_to(control, (n, *control.shape)).copy()
    while points.shape[1] > 1:
        points = (1 - s) * points[:, :-1] + s * points[:, 1:]
    return points[:, 0]


def _border_point(rng: np.random.Generator, bottom: float = 0.25) -> np.ndarray:
    """A point just outside the frame; ``bottom`` is the chance of the lower border (femoral access)."""
    side = 2 if rng.random() < bottom else int(rng.choice([0, 1, 3]))
    u = rng.uniform(0.1, 0.9)
    return [np.array([u, -0.05]), np.array([1.05, u]), np.array([u, 1.05]), np.array([-0.05, u])][side]


def _catheter_path(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, loop: float) -> np.ndarray:
    """A long, smooth catheter course from ``start`` to ``end``; ``loop`` swings it wide (a J or a hook)."""
    middle = (start + end) / 2
    normal = np.array([-(end - start)[1], (end - start)[0]])
    normal /= np.linalg.norm(normal) + 1e-9
    c1 = middle + normal * loop + rng.normal(0, 0.08, 2)
    c2 = end + normal * loop * 0.5 + rng.normal(0, 0.05, 2)
    curve = _bezier(np.stack([start, c1, c2, end]))
    return resample_polyline(curve, PX)


class SequenceRenderer:
    """Samples one patient/run from ``rng`` and renders its frames on demand (deterministic)."""

    def __init__(self, rng: np.random.Generator, size: int, n_frames: int, max_objects: int, with_others: bool) -> None:
        self.size = size
        self.n_frames = n_frames
        self.anatomy = Anatomy.sample(rng, size)
        self.branches: list[Branch] = make_tree(rng)
        ostium = self.branches[0].points[0]
        self.motion = Motion.sample(rng, centre=np.array([ostium[0], ostium[1] + 0.25]))
        max_arc = max(b.arc[-1] for b in self.branches)
        self.t0 = rng.uniform(-12.0, 2.0)
        self.speed = max_arc / rng.uniform(4, 10)
        washes_out = rng.random() < 0.05  # most MOSXAV clips end before the contrast washes out
        self.washout_start = rng.uniform(0.55, 0.8) * n_frames if washes_out else float("inf")
        self.washout_tau = rng.uniform(2, 6)
        self.dose = rng.uniform(250, 1000)
        self.devices = self._sample_devices(rng, ostium, max_objects - 1, with_others)
        self.noise_rng_seed = int(rng.integers(2**31))

    @property
    def object_classes(self) -> dict[int, int]:
        """Instance id -> semantic class of every object of the sequence (id 1 is the vessel tree)."""
        return {1: VESSEL, **{k + 2: d.cls for k, d in enumerate(self.devices)}}

    def _sample_devices(
        self, rng: np.random.Generator, ostium: np.ndarray, budget: int, with_others: bool
    ) -> list[Device]:
        devices: list[Device] = []
        mains = sorted((b for b in self.branches if b.level == 1), key=lambda b: -b.arc[-1])
        trunk = [b.points for b in self.branches if b.level == 0]
        if rng.random() < 0.9:  # the guiding catheter, contrast-filled, engaged in the ostium
            path = _catheter_path(rng, _border_point(rng, bottom=0.5), ostium, rng.uniform(-0.35, 0.35))
            path = path[: len(path) - int(rng.uniform(0, 12))]  # often seated just short of the ostium
            radius = np.full(len(path), rng.uniform(3.5, 5.0) * PX)
            weight = np.linspace(0, 1, len(path)) ** 3
            devices.append(Device(CONTRAST_CATHETER, path, radius, MU_CATHETER_WALL + MU_CONTRAST, weight))
        if rng.random() < 0.55:
            if rng.random() < 0.5:  # a guidewire advanced from the ostium into the longest vessel
                route = np.concatenate([*trunk, mains[0].points])
                path = resample_polyline(route[: int(len(route) * rng.uniform(0.5, 0.9))], PX)
                radius = np.full(len(path), rng.uniform(1.5, 2.2) * PX)
                enters = rng.uniform(1, self.n_frames / 2) if rng.random() < 0.4 else 0.0
                advance = float(rng.uniform(0.03, 0.08)) if enters else 0.0
                devices.append(Device(CATHETER, path, radius, MU_WIRE, 1.0, enters, advance))
            else:  # another catheter or a pacing lead crossing the field, often from border to border
                end = _border_point(rng) if rng.random() < 0.5 else rng.uniform(0.25, 0.75, size=2)
                path = _catheter_path(rng, _border_point(rng), end, rng.uniform(-0.3, 0.3))
                radius = np.full(len(path), rng.uniform(2.5, 4.5) * PX)
                devices.append(Device(CATHETER, path, radius, MU_WIRE * 0.6, np.linspace(0, 0.5, len(path))))
        if rng.random() < 0.3:
            devices.append(self._balloon_or_marker(rng, mains[0], devices))
        if with_others:
            for _ in range(int(rng.integers(1, 6))):  # sternal wires, clips: small radiopaque loops
                centre = rng.uniform(0.15, 0.85, size=2)
                theta = np.linspace(0, 2 * np.pi, 200)
                ax, ay = rng.uniform(0.01, 0.03, size=2)
                loop = centre + np.stack([ax * np.cos(theta), ay * np.sin(theta)], axis=1)
                radius = np.full(len(loop), rng.uniform(1.5, 3.0) * PX)
                devices.append(Device(OTHERS, loop, radius, MU_WIRE * 1.5, 0.0))
        return devices[:budget]

    def _balloon_or_marker(self, rng: np.random.Generator, vessel: Branch, devices: list[Device]) -> Device:
        """A balloon inflated in a main vessel (often mid-clip), or a marker blob at a catheter tip."""
        catheter = next((d for d in devices if d.cls == CONTRAST_CATHETER), None)
        if catheter is None or rng.random() < 0.6:
            n = len(vessel.points)
            a = int(rng.integers(n // 6, max(n // 2, n // 6 + 1)))
            segment = resample_polyline(vessel.points[a : a + int(rng.uniform(0.03, 0.07) / 0.001)], PX)
            if len(segment) < 3:
                segment = resample_polyline(vessel.points[: max(n // 4, 3)], PX)
            radius = np.full(len(segment), max(float(vessel.radius[a]) * rng.uniform(1.5, 2.0), 5 * PX))
            enters = rng.uniform(1, self.n_frames * 0.6) if rng.random() < 0.5 else 0.0
            return Device(BALLOON, segment, radius, MU_CONTRAST * 1.3, 1.0, enters)
        tip = catheter.points[-int(rng.uniform(8, 16)) :]
        return Device(BALLOON, tip, np.full(len(tip), rng.uniform(5, 8) * PX), MU_WIRE, 1.0)

    def fill(self, arc: np.ndarray, t: float) -> np.ndarray:
        """Contrast fill in [0, 1] along the tree: a front moving from the ostium, rarely a wash-out."""
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
        scale512 = 512.0 / n  # chord lengths expressed at 512 px so contrast is size-independent
        att = self.anatomy.attenuation(self.motion.respiratory(t))
        semantic = np.zeros((n, n), np.uint8)
        instance = np.zeros((n, n), np.uint8)
        points = np.concatenate([self._moved(b.points, t) for b in self.branches]) * n
        radius = np.concatenate([b.radius for b in self.branches]) * n
        fill = np.concatenate([self.fill(b.arc, t) * b.opacity for b in self.branches]).astype(np.float32)
        tree = rasterise_tube(points, radius, fill, (n, n))
        att += MU_CONTRAST * scale512 * tree.chord * tree.value
        visible = tree.inside & (tree.value >= VISIBLE_FILL)
        semantic[visible] = VESSEL
        instance[visible] = 1
        for object_id, device in enumerate(self.devices, start=2):
            there = device.visible_points(t)
            if there is None:
                continue
            weight = device.heart_weight[there] if np.ndim(device.heart_weight) else device.heart_weight
            pts = self._moved(device.points[there], t, weight) * n
            field = rasterise_tube(pts, device.radius[there] * n, np.ones(len(pts), np.float32), (n, n))
            att += device.mu * scale512 * field.chord
            semantic[field.inside] = device.cls
            instance[field.inside] = object_id
        transmission = np.exp(-att)
        transmission = ndimage.gaussian_filter(transmission, 0.6 * n / 512)
        noise_rng = np.random.default_rng([self.noise_rng_seed, t])
        counts = noise_rng.poisson(self.dose * transmission) / self.dose
        gain = 0.95 * np.exp(self.anatomy.density)
        image = np.clip(255.0 * gain * counts, 0, 255).astype(np.uint8)
        return image, semantic, instance
