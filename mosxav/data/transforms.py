"""Items as torchvision and MONAI users expect them: channel-first float tensors.

``MOSXAV`` items hold numpy arrays as the files hold them: the frame (H, W) uint8, the masks (H, W)
uint8 class or instance ids. ``ToTensors`` is the ``transform=`` that turns an item into what a
torchvision- or MONAI-style training loop takes: the image a (1, H, W) float tensor in [0, 1], the
masks (H, W) int64 tensors (``IGNORE_INDEX`` kept on frames without annotation), the rest unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: The item keys that hold label maps.
MASK_KEYS = ("semantic", "instance")


class ToTensors:
    """``MOSXAV(root, split, transform=ToTensors())``: channel-first tensors for the image, int64 masks."""

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        image = np.asarray(item["image"])
        scale = 255.0 if image.dtype == np.uint8 else 1.0
        out["image"] = torch.from_numpy(image.astype(np.float32) / scale)[None]
        for key in MASK_KEYS:
            if key in item:
                out[key] = torch.from_numpy(np.asarray(item[key]).astype(np.int64))
        return out

    def __repr__(self) -> str:
        return "ToTensors()"
