"""EndoScapes2023 segmentation (COCO-format JSON) through the same item interface, via pycocotools.

The semantic mask of an image paints each annotation with its class id, larger regions first so
that small structures (the cystic artery, tools) stay visible where regions overlap.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from mosxav.data.files import read_frame, read_json
from mosxav.errors import DataError

#: Class names of EndoScapes-Seg201 as published (COCO category order); the loader reads the
#: names from each annotation file and uses these only to document the expected set.
ENDOSCAPES_CLASSES = (
    "background",
    "cystic_plate",
    "calot_triangle",
    "cystic_artery",
    "cystic_duct",
    "gallbladder",
    "tool",
)


def find_annotation_file(root: Path, split: str) -> Path:
    """``<split>_seg/annotation_coco.json`` (the Seg201 subset) or ``<split>/annotation_coco.json``."""
    for candidate in (root / f"{split}_seg" / "annotation_coco.json", root / split / "annotation_coco.json"):
        if candidate.is_file():
            return candidate
    raise DataError(root, f"no annotation_coco.json for split {split!r} (looked in {split}_seg/ and {split}/)")


class EndoScapes2023:
    """EndoScapes2023 semantic segmentation. Items: ``image``, ``semantic`` (class ids), ``frame``.

    Args:
        root: the dataset folder (holding ``train_seg/`` etc. or ``train/`` etc.).
        split: ``"train"``, ``"val"`` or ``"test"``.
        annotation_file: a COCO JSON to use instead of the one found under ``root``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable[[dict], Any] | None = None,
        annotation_file: str | Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.annotation_file = Path(annotation_file) if annotation_file else find_annotation_file(self.root, split)
        data = read_json(self.annotation_file)
        for key in ("images", "annotations", "categories"):
            if not isinstance(data, dict) or not isinstance(data.get(key), list):
                raise DataError(self.annotation_file, f"not a COCO file: '{key}' list missing")
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO()
            self.coco.dataset = data
            self.coco.createIndex()
        categories = sorted(self.coco.loadCats(self.coco.getCatIds()), key=lambda c: c["id"])
        self.classes: tuple[str, ...] = ("background", *(c["name"] for c in categories))
        self._class_of = {c["id"]: i + 1 for i, c in enumerate(categories)}
        self.image_ids = sorted(self.coco.getImgIds())
        self.image_dir = self.annotation_file.parent
        self.transform = transform

    def __len__(self) -> int:
        return len(self.image_ids)

    def semantic_mask(self, image_id: int) -> np.ndarray:
        info = self.coco.loadImgs(image_id)[0]
        mask = np.zeros((info["height"], info["width"]), np.uint8)
        annotations = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=None))
        for ann in sorted(annotations, key=lambda a: -float(a.get("area", 0))):
            if ann["category_id"] not in self._class_of:
                raise DataError(
                    self.annotation_file, f"annotation {ann.get('id')} has unknown category {ann['category_id']}"
                )
            try:
                region = self.coco.annToMask(ann).astype(bool)
            except Exception as exc:  # pycocotools raises bare errors on malformed polygons / RLE
                raise DataError(
                    self.annotation_file, f"annotation {ann.get('id')}: unreadable segmentation ({exc})"
                ) from None
            mask[region] = self._class_of[ann["category_id"]]
        return mask

    def __getitem__(self, index: int) -> Any:
        image_id = self.image_ids[index]
        info = self.coco.loadImgs(image_id)[0]
        image = read_frame(self.image_dir / info["file_name"])
        if image.shape != (info["height"], info["width"]):
            raise DataError(
                self.image_dir / info["file_name"],
                f"image is {image.shape[1]}x{image.shape[0]}, the COCO file says {info['width']}x{info['height']}",
            )
        item = {
            "image": image,
            "semantic": self.semantic_mask(image_id),
            "instance": None,
            "sequence": str(info.get("video_id", "")),
            "frame_index": index,
            "frame": Path(info["file_name"]).stem,
        }
        return self.transform(item) if self.transform else item
