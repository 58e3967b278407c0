"""Where a run's frames come from: a MOSXAV root (official splits) or folders of ``N.png`` + ``N_gt.png``
pairs (DCA1/XCA; one folder to train on, another to test on). Both give the harness the same thing:
training items with partition records, validation and test items, and a scorer for prediction folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pandas as pd

from mosxav.constants import CLASS_NAMES
from mosxav.data.dataset import MOSXAV
from mosxav.data.files import read_index_mask
from mosxav.data.named import synthetic_root
from mosxav.data.pairs import FramePairs, natural_key
from mosxav.errors import DataError
from mosxav.evaluation.folder import evaluate_semantic
from mosxav.evaluation.metrics import evaluate_frame, frame_table
from mosxav.harness.config import DatasetSpec


@dataclass
class RunData:
    """Everything a run needs to know about its data, whatever the folder layout."""

    name: str
    num_classes: int
    train: Any  # indexable items (dict with image, semantic, sequence, frame)
    records: list[Any]  # one per train item: .sequence, .stem, .semantic_path (None = unannotated)
    val: Any
    test: Any
    score: Callable[[Path], pd.DataFrame]  # prediction folder -> per-(frame, class) table
    gt_root: Path | None = None  # a MOSXAV root whose test split the leaderboard can score (None: not a MOSXAV source)

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(range(1, self.num_classes))

    def verify(self) -> None:
        """Decode every frame and mask a run will read (training, validation and test), so a corrupt or
        mis-sized file stops the run before it trains rather than after: raises ``DataError`` naming it."""
        for items in (self.train, self.val, self.test):
            for index in range(len(items)):
                items[index]


def mosxav_source(root: Path) -> RunData:
    train = MOSXAV(root, "train")
    return RunData(
        name=root.name,
        num_classes=len(CLASS_NAMES),
        train=train,
        records=train.samples,
        val=MOSXAV(root, "val", annotated_only=True),
        test=MOSXAV(root, "test", annotated_only=True),
        score=lambda pred: evaluate_semantic(root, pred, split="test"),
        gt_root=root,
    )


def pairs_source(
    train_dir: Path,
    test_dir: Path,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_ids: list[int | str] | None = None,
    test_ids: list[int | str] | None = None,
) -> RunData:
    """A held-out ``val_fraction`` of the training folder (seeded) selects the best checkpoint;
    the test folder is never seen before scoring. ``train_ids``/``test_ids`` split one folder."""
    if train_dir.resolve() == test_dir.resolve():
        if not train_ids or not test_ids:
            raise ValueError("training and test folders are the same: give disjoint train_ids and test_ids")
        if set(map(str, train_ids)) & set(map(str, test_ids)):
            raise ValueError("train_ids and test_ids overlap: the test images would be trained on")
    everything = FramePairs(train_dir, ids=[str(i) for i in train_ids] if train_ids else None)
    order = np.random.default_rng([seed, 104729]).permutation(len(everything.ids))
    n_val = max(1, round(val_fraction * len(order))) if len(order) > 1 else 0
    val_ids = sorted(everything.ids[i] for i in order[:n_val])
    train = FramePairs(train_dir, ids=[i for i in everything.ids if i not in set(val_ids)])
    val = FramePairs(train_dir, ids=val_ids) if val_ids else train
    test = FramePairs(test_dir, ids=[str(i) for i in test_ids] if test_ids else None)
    records = [
        SimpleNamespace(sequence=train.root.name, stem=key, semantic_path=train.root / f"{key}_gt.png")
        for key in train.ids
    ]

    def score(pred: Path) -> pd.DataFrame:
        rows = []
        for key in test.ids:
            gt = test[test.ids.index(key)]["semantic"]
            path = pred / test.root.name / f"{key}.png"
            if not path.is_file():
                raise DataError(path, "prediction missing for a test image")
            rows.extend(
                {"sequence": test.root.name, "frame": key, **row}
                for row in evaluate_frame(gt, read_index_mask(path), classes=(1,))
            )
        return frame_table(rows)

    return RunData(
        name=f"pairs:{train_dir.name}->{test_dir.name}",
        num_classes=2,
        train=train,
        records=records,
        val=val,
        test=test,
        score=score,
    )


def fold_ids(ids: list[str], folds: int, fold: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train ids, test ids) of ``fold`` in a seeded ``folds``-way split: the images are permuted once
    and dealt round-robin, so the folds differ in size by at most one and together test every image once."""
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not in 0..{folds - 1}")
    if len(ids) < folds:
        raise ValueError(f"{len(ids)} images cannot make {folds} folds")
    order = np.random.default_rng([seed, 7919]).permutation(len(ids))
    test = sorted((ids[i] for k, i in enumerate(order) if k % folds == fold), key=natural_key)
    held = set(test)
    return [i for i in ids if i not in held], test


def build_source(spec: DatasetSpec, resolve_named: Callable[[str], Path], fold: int | None = None) -> RunData:
    """The data of a run config's ``dataset:``: a named dataset, a MOSXAV root, or pairs folders
    (``train_ids``/``test_ids`` split one folder; with ``folds``, ``fold`` picks the test fold)."""
    if spec.type == "pairs" and spec.folds is not None:
        if fold is None:
            raise ValueError("a cross-validated dataset needs the fold to build")
        train_dir = Path(spec.train)
        ids = FramePairs(train_dir, ids=[str(i) for i in spec.train_ids] if spec.train_ids else None).ids
        train_ids, test_ids = fold_ids(list(ids), spec.folds, fold, spec.fold_seed)
        data = pairs_source(train_dir, train_dir, spec.val_fraction, seed=fold, train_ids=train_ids, test_ids=test_ids)
        data.name = f"{data.name} fold {fold + 1}/{spec.folds}"
        return data
    if spec.type == "pairs":
        if spec.train is None or spec.test is None:
            raise ValueError("a pairs dataset needs 'train: <folder of N.png + N_gt.png>' and 'test: <folder>'")
        return pairs_source(
            Path(spec.train), Path(spec.test), spec.val_fraction, train_ids=spec.train_ids, test_ids=spec.test_ids
        )
    if spec.synth is not None:
        return mosxav_source(synthetic_root(spec.synth))
    root = Path(spec.root) if spec.root is not None else resolve_named(spec.name)
    return mosxav_source(root)
