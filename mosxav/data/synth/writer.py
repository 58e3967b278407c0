"""Write a synthetic dataset in the exact MOSXAV layout, deterministically from a seed.

The output is assembled in a temporary folder beside ``out`` and renamed into place at the end,
so an interrupted run never leaves a half-written dataset that looks complete.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.progress import Progress

from mosxav.constants import (
    CLASS_COLOURS,
    CLASS_NAMES,
    IMAGESETS_DIR,
    INSTANCE_DIR,
    JPEG_DIR,
    LABELS_FILE,
    MAX_INSTANCES,
    OTHERS,
    SEMANTIC_DIR,
)
from mosxav.data.files import (
    open_to_group,
    write_frame,
    write_index_mask,
    write_json,
    write_semantic_mask,
    write_text,
)
from mosxav.data.synth.render import SequenceRenderer
from mosxav.data.visualize import contact_sheet

PART_IDS = {"trainval": 0, "test": 1}

#: Bumped whenever the same ``SynthConfig`` renders different data; part of ``synth_config.json``, so a
#: cached synthetic set made by an older generator is regenerated (2: one id per structure, realistic
#: tree geometry, widths and motion).
GENERATOR_VERSION = 2


def synth_stamp(config: SynthConfig) -> dict:
    """What ``synth_config.json`` holds: the generator version and the config it was made with."""
    return {"generator_version": GENERATOR_VERSION, **asdict(config)}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. ``sequences`` counts trainval videos (60% train, 40% val, as MOSXAV's 18/12);
    the test part gets ``test_sequences`` videos (default: 40% of ``sequences``, at least 1)."""

    sequences: int = 30
    frames: int = 45
    size: int = 512
    seed: int = 0
    test_sequences: int | None = None
    annotate_every: int = 5

    def __post_init__(self) -> None:
        if self.sequences < 2:
            raise ValueError("--sequences must be at least 2 (one train and one val sequence)")
        if self.frames < 3:
            raise ValueError("--frames must be at least 3")
        if not 32 <= self.size <= 2048:
            raise ValueError("--size must be between 32 and 2048")

    @property
    def n_test(self) -> int:
        return self.test_sequences if self.test_sequences is not None else max(1, round(0.4 * self.sequences))


def labels_json() -> dict:
    """The ``labels.json`` written beside each part: class ids, names and colours."""
    return {
        "classes": [{"id": i, "name": n, "color": list(CLASS_COLOURS[i])} for i, n in enumerate(CLASS_NAMES)],
        "instances": (
            "Annotations/ holds per-sequence object ids 1..N (0 = background): one id per structure "
            "(the vessel tree, each catheter or guidewire, each balloon, marker or foreign body)"
        ),
    }


def _render_part(
    part_dir: Path, part: str, names: list[str], config: SynthConfig, progress: Progress, sheet_tiles: list
) -> dict[str, dict]:
    """Render every sequence of one part; return per-sequence first-appearance info."""
    first_info: dict[str, dict] = {}
    task = progress.add_task(f"synth {part}", total=len(names) * config.frames)
    for index, name in enumerate(names):
        rng = np.random.default_rng([config.seed, PART_IDS[part], index])
        with_others = part == "test" and rng.random() < 0.6
        renderer = SequenceRenderer(rng, config.size, config.frames, MAX_INSTANCES[part], with_others)
        first: dict[str, str] = {}
        for t in range(config.frames):
            image, semantic, instance = renderer.render(t)
            stem = f"{t:05d}"
            write_frame(part_dir / JPEG_DIR / name / f"{stem}.jpg", image)
            annotated = part == "test" or t % config.annotate_every == 0
            if annotated:
                write_semantic_mask(part_dir / SEMANTIC_DIR / name / f"{stem}.png", semantic)
                write_index_mask(part_dir / INSTANCE_DIR / name / f"{stem}.png", instance)
                for obj in np.unique(instance[instance > 0]):
                    first.setdefault(str(int(obj)), stem)
                if t == config.frames // 2 and len(sheet_tiles) < 24:
                    sheet_tiles.append((image, semantic, f"{part}/{name}/{stem}"))
            progress.advance(task)
        # Seen objects are those of a class the training split has; "others" occur in the test split only.
        seen = {str(k) for k, cls in renderer.object_classes.items() if cls != OTHERS}
        first_info[name] = {"first": first, "seen": seen}
    return first_info


def _first_mask_json(info: dict[str, dict]) -> dict:
    """The published ``*_first_mask.json`` schema: objects grouped by their first-mask frame."""
    videos = {}
    for name, entry in info.items():
        frames: dict[str, dict] = {}
        for obj, stem in sorted(entry["first"].items(), key=lambda kv: (kv[1], int(kv[0]))):
            frames.setdefault(stem, {"objects": []})["objects"].append(obj)
        objects = sorted(entry["first"], key=int)
        videos[name] = {
            "frames": dict(sorted(frames.items())),
            "seen_objects": [o for o in objects if o in entry["seen"]],
            "unseen_objects": [o for o in objects if o not in entry["seen"]],
        }
    return {"videos": videos}


def generate_dataset(
    out: str | Path, config: SynthConfig, *, overwrite: bool = False, progress: Progress | None = None
) -> Path:
    """Generate the dataset into ``out`` (a MOSXAV root) and a ``contact_sheet.png`` beside the parts.

    Written into a staging folder beside ``out`` and moved into place at the end, so an interrupted
    run leaves no half-made root.

    Args:
        out: the new root.
        config: what to generate (sizes, counts, seed).
        overwrite: replace a non-empty ``out``.
        progress: a ``rich`` progress to report into (default: one of its own).

    Returns:
        ``out``.

    Raises:
        FileExistsError: ``out`` exists, is not empty, and ``overwrite`` is False.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is a file, not a folder (choose another --out)")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}: folder exists and is not empty (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    own_progress = progress is None
    progress = progress or Progress(transient=True)
    try:
        with progress if own_progress else _nullcontext():
            tiles: list = []
            perm = np.random.default_rng([config.seed, 99]).permutation(config.sequences)
            n_train = max(1, min(config.sequences - 1, round(0.6 * config.sequences)))
            trainval = [f"v{i:02d}" for i in range(config.sequences)]
            train = sorted(trainval[i] for i in perm[:n_train])
            val = sorted(trainval[i] for i in perm[n_train:])
            tv_dir, test_dir = staging / "trainval", staging / "test"
            tv_info = _render_part(tv_dir, "trainval", trainval, config, progress, tiles)
            test_names = [f"v{i:02d}" for i in range(config.n_test)]
            test_info = _render_part(test_dir, "test", test_names, config, progress, tiles)
            write_text(tv_dir / IMAGESETS_DIR / "train.txt", "\n".join(train) + "\n")
            write_text(tv_dir / IMAGESETS_DIR / "val.txt", "\n".join(val) + "\n")
            write_json(tv_dir / IMAGESETS_DIR / "val_first_mask.json", _first_mask_json({n: tv_info[n] for n in val}))
            write_text(test_dir / IMAGESETS_DIR / "test.txt", "\n".join(test_names) + "\n")
            write_json(test_dir / IMAGESETS_DIR / "test_first_mask.json", _first_mask_json(test_info))
            for part_dir in (tv_dir, test_dir):
                write_json(part_dir / LABELS_FILE, labels_json())
            write_json(staging / "synth_config.json", synth_stamp(config))
            contact_sheet(tiles, staging / "contact_sheet.png")
        if out.exists():
            shutil.rmtree(out)
        open_to_group(staging)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
