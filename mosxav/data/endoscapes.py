"""EndoScapes2023 segmentation (COCO-format JSON) through the same item interface, via pycocotools.

The semantic mask of an image paints each annotation with its class id, larger regions first so
that small structures (the cystic artery, tools) stay visible where regions overlap. Frames are
laparoscopic colour video and stay colour (``colour=False`` converts them to luminance, for a method
built for grey X-ray frames, which should say so). ``write_example`` writes a tiny folder in the
published layout (docs/datasets.md), so the loader can be tried without the registered download.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from mosxav.constants import IGNORE_INDEX
from mosxav.data.files import read_colour_frame, read_frame, read_json, write_text
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
    """EndoScapes2023 semantic segmentation. Items: ``image`` ((H, W, 3) RGB uint8, or (H, W) with
    ``colour=False``), ``semantic`` (class ids), ``instance`` (``IGNORE_INDEX``: none published),
    ``annotated``, ``sequence`` (the video id), ``frame_index``, ``frame``; they collate by default.

    Args:
        root: the dataset folder (holding ``train_seg/`` etc. or ``train/`` etc.).
        split: ``"train"``, ``"val"`` or ``"test"``.
        annotation_file: a COCO JSON to use instead of the one found under ``root``.
        colour: keep the frames' colour (True) or convert them to luminance.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable[[dict], Any] | None = None,
        annotation_file: str | Path | None = None,
        colour: bool = True,
    ) -> None:
        self.colour = colour
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
        path = self.image_dir / info["file_name"]
        image = read_colour_frame(path) if self.colour else read_frame(path).copy()
        if image.shape[:2] != (info["height"], info["width"]):
            raise DataError(
                self.image_dir / info["file_name"],
                f"image is {image.shape[1]}x{image.shape[0]}, the COCO file says {info['width']}x{info['height']}",
            )
        semantic = self.semantic_mask(image_id)
        item = {
            "image": image,
            "semantic": semantic,
            "instance": np.full(semantic.shape, IGNORE_INDEX, np.uint8),
            "annotated": True,
            "sequence": str(info.get("video_id", "")),
            "frame_index": index,
            "frame": Path(info["file_name"]).stem,
        }
        return self.transform(item) if self.transform else item


def write_example(root: str | Path) -> Path:
    """A two-image EndoScapes2023 folder in the published layout (``train_seg/annotation_coco.json`` and
    the frames beside it): a gallbladder polygon, a tool as RLE, a small cystic artery painted over the
    gallbladder. For trying the loader, and for tests, without the registered download."""
    import json

    from PIL import Image
    from pycocotools import mask as mask_utils

    split = Path(root) / "train_seg"
    split.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in (1, 2):
        frame = np.zeros((40, 60, 3), np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2] = 170, 90 + 10 * image_id, 80  # reddish tissue
        Image.fromarray(frame).save(split / f"{image_id}_10.jpg", quality=95)
        images.append({"id": image_id, "file_name": f"{image_id}_10.jpg", "height": 40, "width": 60, "video_id": 1})
        tool = np.zeros((40, 60), np.uint8, order="F")
        tool[5:10, 40:50] = 1
        rle = mask_utils.encode(tool)
        rle["counts"] = rle["counts"].decode()
        base = 3 * (image_id - 1)
        annotations += [
            {
                "id": base + 1,
                "image_id": image_id,
                "category_id": 5,
                "area": 600,
                "iscrowd": 0,
                "segmentation": [[0, 0, 30, 0, 30, 20, 0, 20]],
            },
            {"id": base + 2, "image_id": image_id, "category_id": 6, "area": 50, "iscrowd": 0, "segmentation": rle},
            {
                "id": base + 3,
                "image_id": image_id,
                "category_id": 3,
                "area": 16,
                "iscrowd": 0,
                "segmentation": [[10, 10, 14, 10, 14, 14, 10, 14]],
            },
        ]
    categories = [{"id": i, "name": name} for i, name in enumerate(ENDOSCAPES_CLASSES[1:], 1)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    write_text(split / "annotation_coco.json", json.dumps(coco))
    return Path(root)
