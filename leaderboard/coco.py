"""COCO results JSON (RLE masks, pycocotools) as a submission format.

Convention: ``image_id`` k (1-based) is the k-th ground-truth frame of the split in the order
``sorted(sequences)``, then sorted frame stems (``coco_image_ids`` gives the table); ``category_id``
is the MOSXAV class id (1-5). Overlapping masks are painted in ascending ``score``, so the most
confident wins; unpainted pixels are background.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from mosxav.constants import NUM_CLASSES
from mosxav.data.files import write_semantic_mask
from mosxav.data.layout import mask_frames
from mosxav.errors import Problem


def coco_image_ids(gt_root: Path, names: list[str]) -> dict[int, str]:
    """image_id -> "<sequence>/<stem>" for the ground-truth frames under ``gt_root``."""
    frames = [f"{n}/{p.stem}" for n in sorted(names) for p in mask_frames(gt_root / n)]
    return {i + 1: frame for i, frame in enumerate(frames)}


def coco_to_masks(results: Path, gt_root: Path, names: list[str], out: Path) -> list[Problem]:
    """Render a COCO results list into ``out/<seq>/<stem>.png``; returns every problem found."""
    from PIL import Image

    label = results.name
    if results.stat().st_size > 1024**3:
        return [Problem(label, "larger than 1 GiB")]
    try:
        entries = json.loads(results.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [Problem(label, f"malformed JSON ({exc})")]
    if not isinstance(entries, list):
        return [Problem(label, "a COCO results file is a JSON list of {image_id, category_id, segmentation, score}")]
    ids = coco_image_ids(gt_root, names)
    shapes = {}
    for frame in ids.values():
        with Image.open(gt_root / f"{frame}.png") as image:
            shapes[frame] = (image.height, image.width)
    problems: list[Problem] = []
    by_frame: dict[str, list[tuple[float, int, dict]]] = {}
    for k, entry in enumerate(entries):
        where = f"{label}[{k}]"
        if not isinstance(entry, dict) or not {"image_id", "category_id", "segmentation"} <= set(entry):
            problems.append(Problem(where, "needs image_id, category_id and segmentation"))
            continue
        frame = ids.get(entry["image_id"]) if isinstance(entry["image_id"], int) else None
        if frame is None:
            problems.append(Problem(where, f"image_id {entry['image_id']!r} is not a test frame (1..{len(ids)})"))
            continue
        if not isinstance(entry["category_id"], int) or not 1 <= entry["category_id"] < NUM_CLASSES:
            problems.append(Problem(where, f"category_id {entry['category_id']!r} out of range 1..{NUM_CLASSES - 1}"))
            continue
        rle = entry["segmentation"]
        if not isinstance(rle, dict) or "counts" not in rle or list(rle.get("size", [])) != list(shapes[frame]):
            problems.append(Problem(where, f"segmentation must be an RLE of size {list(shapes[frame])}"))
            continue
        by_frame.setdefault(frame, []).append((float(entry.get("score", 1.0)), entry["category_id"], rle))
    if problems:
        return problems
    for frame, shape in shapes.items():
        canvas = np.zeros(shape, np.uint8)
        for _, category, rle in sorted(by_frame.get(frame, []), key=lambda e: e[0]):
            rle = dict(rle)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode()
            try:
                canvas[mask_utils.decode(rle).astype(bool)] = category
            except (ValueError, TypeError) as exc:
                problems.append(Problem(label, f"undecodable RLE for image {frame} ({exc})"))
        write_semantic_mask(out / f"{frame}.png", canvas)
    return problems


def masks_to_coco(pred_root: Path, gt_root: Path, names: list[str]) -> list[dict]:
    """The inverse, for writing submissions: one RLE per (frame, class present)."""
    from mosxav.data.files import read_index_mask

    results = []
    for image_id, frame in coco_image_ids(gt_root, names).items():
        labels = read_index_mask(pred_root / f"{frame}.png")
        for category in range(1, NUM_CLASSES):
            if (labels == category).any():
                rle = mask_utils.encode(np.asfortranarray((labels == category).astype(np.uint8)))
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": category,
                        "score": 1.0,
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                    }
                )
    return results
