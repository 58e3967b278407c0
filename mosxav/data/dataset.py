"""PyTorch-style MOSXAV datasets: per-frame items and a per-sequence view for video methods.

Modelled on torchvision / MedMNIST: one class, ``root``, ``split``, ``transform``, ``download``.
Pixels are decoded on access only, so a split of any size costs only its file list in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mosxav.constants import CLASS_COLOURS, CLASS_NAMES, IGNORE_INDEX, MAX_INSTANCES, SPLIT_PARTS
from mosxav.data.files import read_frame, read_index_mask
from mosxav.data.layout import FrameRecord, MosxavLayout, read_first_mask_json
from mosxav.errors import DataError

Task = Literal["semantic", "vos"]
Item = dict[str, Any]


def load_record(record: FrameRecord, *, max_instance_id: int = 254) -> Item:
    """Decode one frame and its masks, checking that all of them have the same size. Every array is
    writable and an unannotated frame's masks are ``IGNORE_INDEX`` everywhere, so items collate with
    ``torch.utils.data.default_collate`` (``annotated`` says which frames carry labels)."""
    image = _writable(read_frame(record.image_path))
    unlabeled = np.full(image.shape, IGNORE_INDEX, dtype=np.uint8)
    item: Item = {
        "image": image,
        "semantic": unlabeled,
        "instance": unlabeled.copy(),
        "annotated": record.semantic_path is not None or record.instance_path is not None,
        "sequence": record.sequence,
        "frame_index": record.index,
        "frame": record.stem,
    }
    for key, path, max_id, colours in (
        ("semantic", record.semantic_path, len(CLASS_NAMES) - 1, CLASS_COLOURS),
        ("instance", record.instance_path, max_instance_id, None),
    ):
        if path is None:
            continue
        mask = read_index_mask(path, max_id=max_id, colours=colours)
        if mask.shape != image.shape:
            raise DataError(
                path,
                f"mask is {mask.shape[1]}x{mask.shape[0]} but its frame {record.image_path.name} "
                f"is {image.shape[1]}x{image.shape[0]}",
            )
        item[key] = _writable(mask)
    return item


def _writable(array: np.ndarray) -> np.ndarray:
    """The array itself, or a copy where the decoder handed back a read-only view (PyTorch warns on those)."""
    return array if array.flags.writeable else array.copy()


@dataclass(repr=False)
class MosxavSequence:
    """One video: its frame records in temporal order, decoded lazily on iteration or indexing."""

    name: str
    records: list[FrameRecord]
    max_instance_id: int = 254
    first_appearance: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        annotated = sum(1 for r in self.records if r.semantic_path is not None or r.instance_path is not None)
        return f"MosxavSequence(name={self.name!r}, frames={len(self.records)}, annotated={annotated})"

    def __getitem__(self, index: int) -> Item:
        return load_record(self.records[index], max_instance_id=self.max_instance_id)

    def __iter__(self) -> Iterator[Item]:
        for record in self.records:
            yield load_record(record, max_instance_id=self.max_instance_id)

    @property
    def annotated_indices(self) -> list[int]:
        return [r.index for r in self.records if r.annotated]


class MOSXAV:
    """The MOSXAV dataset (Multi-Object Segmentation in X-ray Angiography Videos).

    Args:
        root: folder holding ``trainval/`` and/or ``test/`` in the published layout.
        split: ``"train"``, ``"val"`` or ``"test"`` (the official ImageSets).
        task: ``"semantic"`` (class masks 0-5) or ``"vos"`` (instance ids, one per structure).
        transform: called on each item dict; returns what ``__getitem__`` gives.
        annotated_only: keep only frames that have a mask for ``task`` (trainval is annotated
            on about every 5th frame, so this is what supervised training iterates).
        sequences: restrict to these sequence names (e.g. a labeled partition).
        download: fetch the dataset into ``root`` first when its split file is missing.

    Items are dicts: ``image`` (HxW uint8), ``semantic`` and ``instance`` (HxW uint8; ``IGNORE_INDEX``
    everywhere on unannotated frames), ``annotated``, ``sequence``, ``frame_index`` (position in the
    video), ``frame`` (stem). Arrays are writable and items collate with ``default_collate``, so a
    ``DataLoader`` takes the dataset as it is.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        task: Task = "semantic",
        transform: Callable[[Item], Any] | None = None,
        *,
        annotated_only: bool = False,
        sequences: Sequence[str] | None = None,
        download: bool = False,
    ) -> None:
        if split not in SPLIT_PARTS:
            alias = {"validation": "val", "training": "train", "testing": "test"}.get(split)
            hint = f" ({split!r} is {alias!r} here)" if alias else ""
            raise ValueError(f"unknown split {split!r}: MOSXAV's splits are 'train', 'val' and 'test'{hint}")
        if task not in ("semantic", "vos"):
            raise ValueError(f"unknown task {task!r}; expected 'semantic' or 'vos'")
        root = Path(root)
        if download and not (root / SPLIT_PARTS[split]).is_dir():
            from mosxav.data.download import download as fetch

            fetch(root)
        self.root = root
        self.split = split
        self.task: Task = task
        self.transform = transform
        self.layout = MosxavLayout(root)
        names = self.layout.sequences(split)
        if sequences is not None:
            unknown = sorted(set(sequences) - set(names))
            if unknown:
                raise DataError(self.layout.split_file(split), f"sequences {unknown} are not in split {split!r}")
            names = [n for n in names if n in set(sequences)]
        self.sequence_names = names
        self.max_instance_id = MAX_INSTANCES[SPLIT_PARTS[split]]
        first_mask = self.layout.first_mask_file(split)
        self._first = read_first_mask_json(first_mask) if first_mask else {}
        self._records: dict[str, list[FrameRecord]] = {n: self.layout.frames(split, n) for n in names}
        mask_key = "semantic_path" if task == "semantic" else "instance_path"
        self.samples: list[FrameRecord] = [
            r for n in names for r in self._records[n] if not annotated_only or getattr(r, mask_key) is not None
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        item = load_record(self.samples[index], max_instance_id=self.max_instance_id)
        return self.transform(item) if self.transform else item

    def sequences(self) -> list[MosxavSequence]:
        """The per-sequence view: every frame of every video, for video methods and VOS."""
        return [
            MosxavSequence(n, self._records[n], self.max_instance_id, self._first.get(n, {}).get("first"))
            for n in self.sequence_names
        ]

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def __repr__(self) -> str:
        return (
            f"MOSXAV(root={str(self.root)!r}, split={self.split!r}, task={self.task!r}, frames={len(self)}, "
            f"sequences={len(self.sequence_names)})"
        )
