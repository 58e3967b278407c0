"""The untrained reference: black top-hat + Otsu threshold (the classic vesselness-free pipeline for
X-ray angiography). Vessels are thin dark ridges, so the grey closing minus the image lights them up;
Otsu's threshold on that response gives the vessel mask. It labels vessel only (class 1), so it is the
floor every trained method must clear on the vessel structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from mosxav.morphology import disk
from mosxav.training.protocol import Method, MethodOptions


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold maximising the between-class variance of a 1-D sample."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mean_low = np.cumsum(hist * centres) / np.maximum(weight_low, 1)
    mean_high = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


def tophat_otsu(image: np.ndarray, radius: int) -> np.ndarray:
    """Boolean vessel mask of one grey frame (dark vessels on a bright background)."""
    smooth = ndimage.gaussian_filter(image.astype(np.float32), 1.0)
    response = ndimage.grey_closing(smooth, footprint=disk(radius)) - smooth
    return response > otsu_threshold(response)


class TophatOtsu(Method):
    name = "tophat_otsu"
    uses_unlabeled = False
    needs_training = False

    @dataclass(frozen=True)
    class Options(MethodOptions):
        radius_fraction: float = 0.03  # closing disk radius as a fraction of the frame side

    def predict(self, images):
        n, _, h, w = images.shape
        radius = max(2, round(self.options.radius_fraction * max(h, w)))
        out = torch.zeros(n, self.num_classes, h, w)
        for k in range(n):
            vessel = torch.from_numpy(tophat_otsu(images[k, 0].cpu().numpy(), radius))
            out[k, 1] = vessel.float()
            out[k, 0] = 1 - out[k, 1]
        return out.to(images.device)
