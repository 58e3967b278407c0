"""How a trained method's test predictions are made: class probabilities at the run's resolution,
optionally averaged over flips, upsampled to the frame, argmax, optionally cleaned of specks.

The same for every method, so that a test-time trick lifts all of them or none: a method's own
``predict`` gives probabilities for a batch, and this module does everything after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from mosxav.data.files import write_semantic_mask
from mosxav.morphology import EIGHT_CONNECTED
from mosxav.training.batches import resize_pair
from mosxav.training.network_input import InputConfig, network_input
from mosxav.training.protocol import Method
from mosxav.training.trainer import in_layout

#: The flips averaged by ``flips: true``: none (first), left-right, up-down, both (a 180 degree turn).
FLIP_DIMS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


@dataclass(frozen=True)
class PredictConfig:
    """``predict:`` in a run config; the defaults make the plain argmax of one forward pass."""

    #: average the class probabilities over the frame and its three flips (4 predictions a frame)
    flips: bool = False
    #: foreground components smaller than this many pixels (8-connected, at the frame's own size)
    #: become background; 0 keeps everything
    min_component: int = 0


def flip_averaged(method: Method, images: torch.Tensor) -> torch.Tensor:
    """``method.predict`` averaged over the flips of ``FLIP_DIMS``, each flipped back before the mean."""
    total = method.predict(images).float()
    for dims in FLIP_DIMS[1:]:
        total += method.predict(images.flip(dims)).float().flip(dims)
    return total / len(FLIP_DIMS)


def drop_small_components(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """``labels`` with every foreground component (per class, 8-connected) under ``min_pixels`` set to
    background (0): isolated specks far from the structure cost Dice a little and HD95 a lot."""
    if min_pixels <= 0:
        return labels
    out = labels.copy()
    for cls in np.unique(labels):
        if cls == 0:
            continue
        components, count = ndimage.label(labels == cls, structure=EIGHT_CONNECTED)
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        small = sizes < min_pixels
        small[0] = False
        out[small[components]] = 0
    return out


@torch.no_grad()
def predict_items(
    method: Method,
    items: Any,
    size: int,
    out_dir: Path,
    device: torch.device,
    config: PredictConfig | None = None,
    batch: int = 8,
    channels_last: bool = False,
    input_config: InputConfig | None = None,
    amp: bool = False,
) -> None:
    """Predict every item at the run size, upsample probabilities to the frame size, write class PNGs
    (``channels_last``: the images in the layout the trainer gave the weights; ``input_config``: the
    input transform the method was trained with; ``amp``: under bfloat16 autocast, as it was trained)."""
    config = config or PredictConfig()
    method.eval()
    for start in range(0, len(items), batch):
        chunk = [items[i] for i in range(start, min(start + batch, len(items)))]
        images = [resize_pair(item["image"], None, size)[0] for item in chunk]
        x = torch.stack([torch.from_numpy(network_input(image, input_config))[None] for image in images])
        x = in_layout(x.to(device), channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            probs = (flip_averaged(method, x) if config.flips else method.predict(x)).float().cpu()
        for item, p in zip(chunk, probs, strict=False):
            full = F.interpolate(p[None], size=item["image"].shape, mode="bilinear", align_corners=False)
            labels = drop_small_components(full.argmax(1)[0].numpy().astype(np.uint8), config.min_component)
            write_semantic_mask(out_dir / item["sequence"] / f"{item['frame']}.png", labels)
