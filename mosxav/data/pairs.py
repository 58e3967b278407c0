"""Single-frame folders of ``N.png`` + ``N_gt.png`` pairs (the DCA1 / XCA convention; vessel only).

Masks are binarised at > 127 (some published masks carry a few grey pixels), giving class 1 =
vessel, so these folders plug into the same metrics and trainer as MOSXAV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mosxav.constants import IGNORE_INDEX
from mosxav.data.files import read_frame, read_index_mask
from mosxav.errors import DataError


class FramePairs:
    """A folder of ``<id>.png`` images and ``<id>_gt.png`` masks; items match the MOSXAV dict."""

    def __init__(
        self, root: str | Path, transform: Callable[[dict], Any] | None = None, ids: list[str] | None = None
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "folder not found")
        images = {p.stem for p in self.root.glob("*.png") if not p.stem.endswith("_gt")}
        masks = {p.stem[:-3] for p in self.root.glob("*_gt.png")}
        if not images:
            raise DataError(self.root, "no '<id>.png' images found")
        missing = sorted(images - masks, key=natural_key)
        if missing:
            raise DataError(self.root / f"{missing[0]}_gt.png", f"mask missing for images {missing[:5]}")
        orphans = sorted(masks - images, key=natural_key)
        if orphans:
            raise DataError(self.root / f"{orphans[0]}_gt.png", f"masks without an image: {orphans[:5]}")
        all_ids = sorted(images, key=natural_key)
        if ids is not None:
            unknown = sorted(set(ids) - set(all_ids))
            if unknown:
                raise DataError(self.root, f"unknown ids {unknown[:5]}")
            all_ids = [i for i in all_ids if i in set(ids)]
        self.ids = all_ids
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Any:
        key = self.ids[index]
        image = read_frame(self.root / f"{key}.png")
        raw = read_index_mask(self.root / f"{key}_gt.png")
        if raw.shape != image.shape:
            raise DataError(
                self.root / f"{key}_gt.png",
                f"mask is {raw.shape[1]}x{raw.shape[0]}, image is {image.shape[1]}x{image.shape[0]}",
            )
        semantic = (raw > 127).astype(np.uint8)
        item = {
            "image": image.copy() if not image.flags.writeable else image,
            "semantic": semantic,
            "instance": np.full(semantic.shape, IGNORE_INDEX, np.uint8),  # one structure: no instance ids
            "annotated": True,
            "sequence": self.root.name,
            "frame_index": index,
            "frame": key,
        }
        return self.transform(item) if self.transform else item


def natural_key(key: str) -> tuple[int, int, str]:
    """Sort key of an image id: numbers by value (``2`` before ``10``), then names; ties by the text."""
    return (0, int(key), key) if key.isdigit() else (1, 0, key)
