"""Background attenuation of a chest X-ray: spine, ribs, diaphragm and heart shadow, lung texture.

Everything here is smooth and low-frequency, as in real angiograms, but with edges (rib borders,
the diaphragm dome, vertebral plates) strong enough to fool a plain intensity threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class Anatomy:
    """Parameters of one patient's background; ``attenuation(t)`` renders it at frame t."""

    size: int
    texture: np.ndarray
    spine_x: float
    spine_w: float
    vertebra_period: float
    ribs: list[tuple[float, float, float, float]]
    diaphragm_y: float
    diaphragm_curve: float
    heart: tuple[float, float, float, float]
    density: float

    @classmethod
    def sample(cls, rng: np.random.Generator, size: int) -> "Anatomy":
        noise = rng.normal(size=(size, size))
        texture = ndimage.gaussian_filter(noise, size / 10) * 1.0 + ndimage.gaussian_filter(noise, size / 40) * 0.5
        texture = (texture - texture.mean()) / (texture.std() + 1e-9)
        ribs = [
            (rng.uniform(-0.1, 1.0), rng.uniform(0.5, 1.6), rng.uniform(0.2, 0.8), rng.uniform(0.02, 0.045))
            for _ in range(rng.integers(3, 7))
        ]
        heart = (rng.uniform(0.4, 0.6), rng.uniform(0.55, 0.75), rng.uniform(0.3, 0.45), rng.uniform(0.25, 0.4))
        return cls(
            size=size,
            texture=texture.astype(np.float32),
            spine_x=rng.uniform(0.3, 0.7),
            spine_w=rng.uniform(0.12, 0.2),
            vertebra_period=rng.uniform(0.1, 0.16),
            ribs=ribs,
            diaphragm_y=rng.uniform(0.65, 0.95),
            diaphragm_curve=rng.uniform(0.5, 1.5),
            heart=heart,
            density=rng.uniform(0.35, 0.7),
        )

    def attenuation(self, shift: np.ndarray) -> np.ndarray:
        """Line-integral attenuation (dimensionless) with the chest moved by ``shift`` (respiration)."""
        n = self.size
        y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
        x = x - shift[0]
        y = y - shift[1]
        att = self.density + 0.08 * self.texture
        spine = np.exp(-(((x - self.spine_x) / self.spine_w) ** 4))
        plates = 0.5 + 0.5 * np.cos(2 * np.pi * y / self.vertebra_period)
        att += spine * (0.35 + 0.12 * plates)
        for y0, curve, xc, thick in self.ribs:
            centre = y0 + curve * (x - xc) ** 2 * 0.3
            dist = np.abs(y - centre) / thick
            att += 0.12 * np.exp(-(dist**2)) + 0.08 * np.exp(-((dist - 1.0) ** 2) * 8)
        dome = self.diaphragm_y + self.diaphragm_curve * 0.4 * (x - 0.5) ** 2
        att += 0.6 / (1 + np.exp(-(y - dome) * n / 6.0))
        hx, hy, ax, ay = self.heart
        att += 0.25 * np.exp(-((((x - hx) / ax) ** 2 + ((y - hy) / ay) ** 2) ** 2))
        r = np.hypot(x + shift[0] - 0.5, y + shift[1] - 0.5)
        att += 1.5 / (1 + np.exp(-(r - 0.68) * n / 8.0))  # collimator / vignetting
        return att
