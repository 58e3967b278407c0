"""Submissions made from the ground truth, for the tests and the benchmarks (no pytest here: the
service's load benchmark imports this with the serve extra alone)."""

from __future__ import annotations

from pathlib import Path

import yaml

from mosxav.constants import SEMANTIC_DIR
from mosxav.data.files import read_index_mask, write_semantic_mask
from mosxav.data.layout import sequence_folders
from mosxav.data.splits import make_partition

META = {
    "method": "perfect",
    "authors": ["A. Tester"],
    "contact": "a@example.org",
    "code_url": "https://example.org/code",
    "labeled_fraction": 0.25,
    "partition": "partition.yaml",
    "seeds": [0],
    "parameters": 1000,
    "extra_training_data": False,
    "toolkit_version": "0.1.0",
}


def gt_frames(root, split="test"):
    gt_root, names = sequence_folders(root, split, SEMANTIC_DIR)
    return gt_root, names


def make_submission(root: Path, out: Path, *, method="perfect", damage=None, meta=None, split="test") -> Path:
    """A submission folder whose predictions are the ground truth, optionally altered per frame."""
    from mosxav import MOSXAV

    gt_root, names = gt_frames(root, split)
    for name in names:
        for path in sorted((gt_root / name).glob("*.png")):
            mask = read_index_mask(path)
            if damage is not None:
                mask = damage(name, path.stem, mask)
            write_semantic_mask(out / "predictions" / name / path.name, mask)
    fields = {**META, "method": method, **(meta or {})}
    fraction = (
        fields["labeled_fraction"]
        if isinstance(fields["labeled_fraction"], float) and fields["labeled_fraction"] <= 1
        else 0.25
    )
    make_partition(MOSXAV(root, "train").samples, fraction=fraction, seed=0).to_yaml(out / "partition.yaml")
    (out / "submission.yaml").write_text(yaml.safe_dump(fields))
    return out


def erase_class(cls, every=1):
    def damage(name, stem, mask):
        if int(stem) % every == 0:
            mask = mask.copy()
            mask[mask == cls] = 0
        return mask

    return damage
