"""Official splits and semi-supervised labeled/unlabeled partitions, stored as readable YAML.

A partition is drawn from a seeded permutation and the first k items are labeled, so for one seed
the 5% labeled set is a subset of the 10% set: results across fractions differ only in how much
is labeled, never in which frames happen to be drawn. Every method reads the same YAML file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from mosxav.data.files import read_untrusted_yaml, read_yaml, write_text
from mosxav.data.layout import FrameRecord
from mosxav.errors import DataError

Unit = Literal["frame", "sequence"]
PARTITION_VERSION = 1


def frame_id(record: FrameRecord) -> str:
    """The id of a frame in partitions and submissions: ``"<sequence>/<stem>"``."""
    return f"{record.sequence}/{record.stem}"


@dataclass
class Partition:
    """Which training frames are labeled. ``labeled`` lists frame ids; everything else in the
    split (annotated or not) is unlabeled data for the semi-supervised methods."""

    split: str
    unit: Unit
    seed: int
    fraction: float | None
    count: int
    labeled: list[str] = field(default_factory=list)
    version: int = PARTITION_VERSION

    def labeled_set(self) -> frozenset[str]:
        """The labeled frame ids as a set, for membership tests over a whole split."""
        return frozenset(self.labeled)

    def problems_against(self, records: list[FrameRecord], mask_key: str = "semantic_path") -> list[str]:
        """What contradicts the split it claims to come from: labeled frames that are not annotated
        frames of ``records``, a ``count`` that is not the number of labeled items, or a ``fraction``
        that ``make_partition`` would turn into another count."""
        annotated = [r for r in records if getattr(r, mask_key) is not None]
        known = {frame_id(r) for r in annotated}
        problems = []
        strangers = sorted(set(self.labeled) - known)
        if strangers:
            problems.append(f"{len(strangers)} labeled frame(s) are not annotated {self.split} frames: {strangers[:3]}")
        if len(set(self.labeled)) != len(self.labeled):
            problems.append("'labeled' lists a frame more than once")
        items = len(known) if self.unit == "frame" else len({r.sequence for r in annotated})
        chosen = len(set(self.labeled)) if self.unit == "frame" else len({x.split("/")[0] for x in self.labeled})
        if chosen != self.count:
            problems.append(f"count {self.count} but {chosen} {self.unit}(s) are labeled")
        expected = labeled_count(self.fraction, items) if self.fraction is not None else self.count
        if items and self.count != expected:
            problems.append(f"fraction {self.fraction} of {items} {self.unit}s labels {expected}, not {self.count}")
        return problems

    def to_yaml(self, path: str | Path) -> Path:
        data = asdict(self)
        write_text(
            path,
            "# MOSXAV-Bench labeled partition: frames listed under 'labeled' may use their masks\n"
            + yaml.safe_dump(data, sort_keys=False),
        )
        return Path(path)

    @classmethod
    def from_yaml(cls, path: str | Path, *, untrusted: bool = False) -> "Partition":
        """Read a partition file; ``untrusted`` (a submission's) caps its size and refuses YAML aliases."""
        path = Path(path)
        data = (
            read_untrusted_yaml(path, "partition file", 8 * 1024**2) if untrusted else read_yaml(path, "partition file")
        )
        required = {"split", "unit", "seed", "fraction", "count", "labeled"}
        if not isinstance(data, dict) or not required <= set(data):
            raise DataError(path, f"a partition needs the keys {sorted(required)}")
        if data.get("version", PARTITION_VERSION) != PARTITION_VERSION:
            raise DataError(
                path, f"partition version {data.get('version')} is not supported (expected {PARTITION_VERSION})"
            )
        if data["unit"] not in ("frame", "sequence"):
            raise DataError(path, f"unit must be 'frame' or 'sequence', got {data['unit']!r}")
        if not isinstance(data["labeled"], list) or not all(isinstance(x, str) and "/" in x for x in data["labeled"]):
            raise DataError(path, "'labeled' must be a list of '<sequence>/<frame>' ids")
        return cls(**{k: data[k] for k in required}, version=data.get("version", PARTITION_VERSION))


def labeled_count(fraction: float, items: int) -> int:
    """How many of ``items`` a ``fraction`` labels: at least one, so tiny fractions stay trainable."""
    return max(1, math.floor(fraction * items + 1e-9))


def make_partition(
    records: list[FrameRecord],
    *,
    fraction: float | None = None,
    count: int | None = None,
    unit: Unit = "frame",
    seed: int = 0,
    split: str = "train",
    mask_key: str = "semantic_path",
) -> Partition:
    """Draw a labeled set from the annotated ``records`` of a split.

    Give either ``fraction`` (of annotated frames, or of sequences) or ``count``. At least one
    item is always labeled, so tiny fractions on tiny datasets stay trainable. Items are drawn from
    one seeded permutation, so a smaller fraction's set is a subset of a larger one's.

    Args:
        records: the split's frames (``MOSXAV(root, split).samples``); only annotated ones are drawn.
        fraction: the share of annotated frames (``unit="frame"``) or of sequences to label.
        count: how many frames or sequences to label instead.
        unit: ``"frame"`` or ``"sequence"`` (whole videos labeled).
        seed: the permutation's seed.
        split: the split named in the partition file.
        mask_key: the record field that says a frame is annotated.

    Returns:
        the ``Partition`` (write it with ``to_yaml``; every method of a run reads the same file).

    Raises:
        ValueError: both or neither of ``fraction`` and ``count``, no annotated frame, or more asked than
            there are.
    """
    if (fraction is None) == (count is None):
        raise ValueError("give exactly one of fraction or count")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    annotated = [r for r in records if getattr(r, mask_key) is not None]
    if not annotated:
        raise ValueError("the split has no annotated frames to label")
    rng = np.random.default_rng([seed, 7919])
    if unit == "frame":
        items = sorted(frame_id(r) for r in annotated)
    else:
        items = sorted({r.sequence for r in annotated})
    order = [items[i] for i in rng.permutation(len(items))]
    k = count if count is not None else labeled_count(fraction, len(items))
    if not 1 <= k <= len(items):
        raise ValueError(f"cannot label {k} of {len(items)} {unit}s")
    chosen = set(order[:k])
    if unit == "frame":
        labeled = sorted(chosen)
    else:
        labeled = sorted(frame_id(r) for r in annotated if r.sequence in chosen)
    return Partition(split=split, unit=unit, seed=seed, fraction=fraction, count=k, labeled=labeled)
