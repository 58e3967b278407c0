"""The structuring elements every mask operation in the toolkit shares."""

from __future__ import annotations

import numpy as np

#: 8-connectivity, for labelling components: a vessel continuing diagonally is one component.
EIGHT_CONNECTED: np.ndarray = np.ones((3, 3), dtype=bool)
EIGHT_CONNECTED.flags.writeable = False


def disk(radius: int) -> np.ndarray:
    """Boolean disk of ``radius`` pixels: the points (y, x) with y² + x² <= radius², as skimage's ``disk``
    (the DAVIS boundary tolerance, label-noise erosion, the top-hat closing)."""
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius
