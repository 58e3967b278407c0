"""What the network sees of a frame: its grey levels in [0, 1], or after local contrast normalization.

The same transform serves training, validation and prediction, for every trained method alike, so a
choice made here lifts all of them or none (fixed pipelines keep the grey levels they are defined on).
Local contrast normalization (divisive normalization, Pinto et al. 2008; Jarrett et al. 2009) answers
two failures of the plain input on real angiograms: a vessel crossing a dark region (the heart shadow,
the diaphragm) has a small absolute contrast, and a low-dose frame is flat grey; both look like
background at the raw grey levels. Each pixel becomes its difference from a Gaussian local mean,
divided by the local standard deviation around that mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

#: Added to the local standard deviation (grey levels in [0, 1]) so that flat regions are not amplified
#: beyond their noise: the fine-scale noise of the XCA angiograms at 256 px is 0.003-0.013, their local
#: standard deviation at the default sigma 0.013-0.03 (median per frame).
LOCAL_STD_FLOOR = 0.005

#: Normalized values of +-LOCAL_RANGE map to 0 and 1 (and are clipped there), so the network's
#: input stays in [0, 1] like the plain grey levels and the intensity augmentations apply unchanged.
LOCAL_RANGE = 4.0


@dataclass(frozen=True)
class InputConfig:
    """``input:`` in a run config; the default is the plain grey levels."""

    #: ``none``: grey level / 255; ``local``: local contrast normalization (this module's docstring)
    contrast: Literal["none", "local"] = "none"
    #: ``local``: the Gaussian's standard deviation as a fraction of the frame's side (0.06 at 256 px is
    #: 15 px: wider than the widest coronary vessel, so a vessel does not normalize itself away)
    sigma: float = 0.06


def network_input(image: np.ndarray, config: InputConfig | None = None) -> np.ndarray:
    """The float32 (H, W) input in [0, 1] for a uint8 (H, W) frame at the run's resolution."""
    grey = image.astype(np.float32) / 255.0
    config = config or InputConfig()
    if config.contrast == "none":
        return grey
    return local_contrast(grey, config.sigma * max(grey.shape))


def local_contrast(grey: np.ndarray, sigma: float) -> np.ndarray:
    """``(x - G*x) / (sqrt(G*(x - G*x)^2) + LOCAL_STD_FLOOR)``, mapped from +-LOCAL_RANGE to [0, 1].

    ``G`` is a Gaussian of standard deviation ``sigma`` pixels; the frame's edges are reflected.
    """
    centered = grey - ndimage.gaussian_filter(grey, sigma, mode="reflect")
    local_std = np.sqrt(ndimage.gaussian_filter(centered * centered, sigma, mode="reflect"))
    normalized = centered / (local_std + LOCAL_STD_FLOOR)
    return np.clip(0.5 + normalized / (2 * LOCAL_RANGE), 0.0, 1.0).astype(np.float32)
