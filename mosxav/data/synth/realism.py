"""How much a set of instance masks looks like MOSXAV: shape, topology, width and motion statistics.

The same numbers are computed on the real masks and on a synthetic set so that the generator can be
judged by ratios (``bench/synth_realism.py``, ``mosxav-bench synth --report REAL_DIR``). Everything is
measured on the foreground of the instance masks (``Annotations/``: 0 background, 1..N objects), one
sequence at a time, so memory holds one sequence's masks.

Definitions (8-connectivity throughout; skeletons are scikit-image's ``skeletonize``):

- objects per sequence: distinct ids over all annotated frames;
- branch points per frame: connected clusters of skeleton pixels with three or more skeleton
  neighbours (a junction drawn as a 2x2 knot counts once);
- holes per frame: background regions of at least ``HOLE_MIN_PX`` pixels enclosed by foreground;
- components per frame: connected foreground regions;
- width: 2 x the Euclidean distance transform of the foreground, sampled on the skeleton (pooled);
- foreground share: foreground pixels / frame pixels;
- motion: for each annotated frame a whose frame a + ``MOTION_GAP`` is annotated too, the median
  distance from a skeleton pixel of a to the nearest skeleton pixel of a + 5, divided by 5 (pixels per
  frame). A fixed gap, MOSXAV's annotation stride, because the distance to the nearest skeleton pixel
  is not proportional to the gap (it has a floor of about a pixel and saturates between branches);
- objects gone: objects seen on some frame that are absent on the last annotated frame.

Sizes are in pixels of the masks as stored; a synthetic set should be generated at 512 px (MOSXAV's size)
to be compared with the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from rich.progress import Progress
from scipy import ndimage

from mosxav.constants import INSTANCE_DIR, JPEG_DIR, davis_palette
from mosxav.data.files import atomic_path, read_frame, read_index_mask
from mosxav.data.layout import PART_SPLITS
from mosxav.morphology import EIGHT_CONNECTED

#: Frame gap over which skeleton motion is measured (MOSXAV annotates every 5th frame).
MOTION_GAP = 5

#: Smallest enclosed background region counted as a hole (smaller ones are annotation speckle).
HOLE_MIN_PX = 10


def _skeletonize(foreground: np.ndarray) -> np.ndarray:
    try:
        from skimage.morphology import skeletonize
    except ImportError as error:  # pragma: no cover - the message is the point
        raise ImportError("mask realism statistics need scikit-image: pip install 'mosxav-bench[bench]'") from error
    return skeletonize(foreground)


@dataclass(frozen=True)
class FrameStats:
    """Per-frame statistics of one instance mask."""

    branch_points: int
    holes: int
    components: int
    foreground_share: float
    widths: np.ndarray
    skeleton: np.ndarray
    ids: frozenset[int]


def frame_stats(mask: np.ndarray) -> FrameStats:
    """Statistics of one instance mask (H, W) of object ids."""
    foreground = mask > 0
    skeleton = _skeletonize(foreground)
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), EIGHT_CONNECTED.astype(np.uint8), mode="constant") - 1
    junction = skeleton & (neighbours >= 3)
    _, branch_points = ndimage.label(junction, structure=EIGHT_CONNECTED)
    enclosed = ndimage.binary_fill_holes(foreground) & ~foreground
    hole_labels, n_holes = ndimage.label(enclosed)
    hole_sizes = np.bincount(hole_labels.ravel())[1:] if n_holes else np.zeros(0, int)
    _, components = ndimage.label(foreground, structure=EIGHT_CONNECTED)
    widths = 2.0 * ndimage.distance_transform_edt(foreground)[skeleton]
    return FrameStats(
        branch_points=int(branch_points),
        holes=int((hole_sizes >= HOLE_MIN_PX).sum()),
        components=int(components),
        foreground_share=float(foreground.mean()),
        widths=widths.astype(np.float32),
        skeleton=skeleton,
        ids=frozenset(int(i) for i in np.unique(mask[foreground])),
    )


def skeleton_displacement(before: np.ndarray, after: np.ndarray) -> float | None:
    """Median distance (px) from the skeleton pixels of ``before`` to the nearest of ``after``."""
    if not before.any() or not after.any():
        return None
    distance_to_after = ndimage.distance_transform_edt(~after)
    return float(np.median(distance_to_after[before]))


@dataclass
class RealismStats:
    """Accumulated statistics of a set of sequences; ``summary()`` gives the comparable numbers."""

    objects_per_sequence: list[int] = field(default_factory=list)
    branch_points: list[int] = field(default_factory=list)
    holes: list[int] = field(default_factory=list)
    components: list[int] = field(default_factory=list)
    foreground_share: list[float] = field(default_factory=list)
    widths: list[np.ndarray] = field(default_factory=list)
    motion_per_frame: list[float] = field(default_factory=list)
    objects_seen: int = 0
    objects_gone: int = 0
    frames: int = 0

    def add_sequence(self, frames: Iterable[tuple[int, np.ndarray]]) -> None:
        """Add one sequence given as (frame index, instance mask) in frame order."""
        seen: set[int] = set()
        skeletons: dict[int, np.ndarray] = {}
        last_ids: frozenset[int] = frozenset()
        for index, mask in frames:
            stats = frame_stats(mask)
            self.frames += 1
            self.branch_points.append(stats.branch_points)
            self.holes.append(stats.holes)
            self.components.append(stats.components)
            self.foreground_share.append(stats.foreground_share)
            self.widths.append(stats.widths)
            seen |= stats.ids
            last_ids = stats.ids
            before = skeletons.pop(index - MOTION_GAP, None)
            if before is not None:
                moved = skeleton_displacement(before, stats.skeleton)
                if moved is not None:
                    self.motion_per_frame.append(moved / MOTION_GAP)
            skeletons = {i: s for i, s in skeletons.items() if i > index - MOTION_GAP}
            skeletons[index] = stats.skeleton
        self.objects_per_sequence.append(len(seen))
        self.objects_seen += len(seen)
        self.objects_gone += len(seen - last_ids)

    def summary(self) -> dict[str, float]:
        """The statistics as named numbers (means per frame or sequence, width percentiles in px)."""
        widths = np.concatenate(self.widths) if self.widths else np.zeros(1)
        return {
            "objects per sequence": float(np.mean(self.objects_per_sequence)),
            "skeleton branch points per frame": float(np.mean(self.branch_points)),
            f"enclosed holes >= {HOLE_MIN_PX} px per frame": float(np.mean(self.holes)),
            "connected components per frame": float(np.mean(self.components)),
            "vessel width p10 (px)": float(np.percentile(widths, 10)),
            "vessel width median (px)": float(np.median(widths)),
            "vessel width p90 (px)": float(np.percentile(widths, 90)),
            "foreground share per frame (%)": 100.0 * float(np.mean(self.foreground_share)),
            "median skeleton displacement (px/frame)": float(np.median(self.motion_per_frame))
            if self.motion_per_frame
            else float("nan"),
            "objects gone by the last annotated frame (%)": 100.0 * self.objects_gone / max(self.objects_seen, 1),
        }


def sequence_folders(root: str | Path, parts: tuple[str, ...] = ("trainval",)) -> list[Path]:
    """Sequence folders of instance masks: ``parts`` of a MOSXAV root, or the sub-folders of a plain folder."""
    root = Path(root)
    if any((root / part).is_dir() for part in PART_SPLITS):
        bases = [root / part / INSTANCE_DIR for part in parts]
    elif (root / INSTANCE_DIR).is_dir():
        bases = [root / INSTANCE_DIR]
    else:
        bases = [root]
    return [p for base in bases for p in sorted(base.glob("*")) if p.is_dir() and any(p.glob("*.png"))]


def measure(
    root: str | Path, *, parts: tuple[str, ...] = ("trainval",), progress: Callable[[], object] | None = None
) -> RealismStats:
    """Statistics of every sequence of instance masks under ``root`` (see ``sequence_folders``)."""
    stats = RealismStats()
    folders = sequence_folders(root, parts)
    if not folders:
        raise FileNotFoundError(f"{root}: no sequence folders of PNG instance masks found")
    for folder in folders:
        pngs = sorted(folder.glob("*.png"))
        stats.add_sequence((int(p.stem), read_index_mask(p)) for p in pngs)
        if progress is not None:
            progress()
    return stats


#: A statistic is within the goal when synthetic / real lies in [1 / GOAL_RATIO, GOAL_RATIO].
GOAL_RATIO = 1.5


@dataclass(frozen=True)
class Comparison:
    """One statistic on the real and the synthetic masks, their ratio and whether it is within the goal."""

    statistic: str
    real: float
    synthetic: float

    @property
    def ratio(self) -> float:
        if self.real == 0:
            return 1.0 if self.synthetic == 0 else float("inf")
        return self.synthetic / self.real

    @property
    def within_goal(self) -> bool:
        return 1.0 / GOAL_RATIO <= self.ratio <= GOAL_RATIO


def compare(real: RealismStats, synthetic: RealismStats) -> list[Comparison]:
    """The statistics of ``real`` and ``synthetic`` side by side, in ``summary()`` order."""
    real_numbers, synthetic_numbers = real.summary(), synthetic.summary()
    return [Comparison(name, real_numbers[name], synthetic_numbers[name]) for name in real_numbers]


def comparison_markdown(rows: list[Comparison], real_label: str, synthetic_label: str) -> str:
    """A Markdown table, one line per statistic, with the ratio and the 1.5x goal."""
    lines = [
        f"| statistic | real ({real_label}) | synthetic ({synthetic_label}) | ratio | within {GOAL_RATIO}x |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        mark = "yes" if row.within_goal else "**no**"
        lines.append(f"| {row.statistic} | {row.real:.2f} | {row.synthetic:.2f} | {row.ratio:.2f} | {mark} |")
    return "\n".join(lines) + "\n"


def comparison_csv(rows: list[Comparison]) -> str:
    lines = ["statistic,real,synthetic,ratio,within_goal"]
    lines += [f'"{r.statistic}",{r.real:.4f},{r.synthetic:.4f},{r.ratio:.4f},{int(r.within_goal)}' for r in rows]
    return "\n".join(lines) + "\n"


def _middle_png(folder: Path) -> Path:
    pngs = sorted(folder.glob("*.png"))
    return pngs[len(pngs) // 2]


def side_by_side(real_root: str | Path, synthetic_root: str | Path, path: str | Path, columns: int = 6) -> Path:
    """A picture of ``columns`` real masks above synthetic masks and their images (middle frame of each)."""
    tile = 192
    real = sequence_folders(real_root)[:columns]
    synthetic = sequence_folders(synthetic_root)[:columns]
    rows = [("real MOSXAV masks", real, "mask"), ("synthetic masks", synthetic, "mask")]
    rows.append(("synthetic images", synthetic, "image"))
    sheet = Image.new("RGB", (columns * tile, len(rows) * (tile + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (caption, folders, kind) in enumerate(rows):
        y = r * (tile + 16)
        draw.text((4, y + 2), caption, fill="black")
        for c, folder in enumerate(folders):
            if kind == "mask":
                picture = Image.fromarray(read_index_mask(_middle_png(folder)), "P")
                picture.putpalette(davis_palette())
                picture = picture.convert("RGB")
            else:
                frame = folder.parents[1] / JPEG_DIR / folder.name / f"{_middle_png(folder).stem}.jpg"
                picture = Image.fromarray(read_frame(frame)).convert("RGB")
            sheet.paste(picture.resize((tile, tile), Image.NEAREST), (c * tile, y + 16))
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def realism_report(
    real_root: str | Path, synthetic_root: str | Path, out_dir: str | Path, *, progress: Progress | None = None
) -> list[Comparison]:
    """Measure both sets, write ``realism.md``, ``realism.csv`` and ``realism.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measured = []
    for label, root in (("real", real_root), ("synthetic", synthetic_root)):
        task = progress.add_task(f"measure {label}", total=len(sequence_folders(root))) if progress else None
        advance = (lambda task=task: progress.advance(task)) if progress else None
        measured.append(measure(root, progress=advance))
    real, synthetic = measured
    rows = compare(real, synthetic)
    real_label = f"{len(real.objects_per_sequence)} sequences, {real.frames} masks"
    synthetic_label = f"{len(synthetic.objects_per_sequence)} sequences, {synthetic.frames} masks"
    text = f"# Synthetic vs real masks\n\nreal: `{real_root}`  \nsynthetic: `{synthetic_root}`\n\n"
    text += comparison_markdown(rows, real_label, synthetic_label)
    text += "\n![real masks above synthetic masks and images](realism.png)\n"
    (out_dir / "realism.md").write_text(text)
    (out_dir / "realism.csv").write_text(comparison_csv(rows))
    side_by_side(real_root, synthetic_root, out_dir / "realism.png")
    return rows
