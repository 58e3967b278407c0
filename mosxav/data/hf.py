"""Hugging Face ``datasets`` integration: ``load_dataset`` and the parquet export with a dataset card.

``load_dataset("mosxav", task=..., split=...)`` mirrors the call shape of ``datasets.load_dataset``;
the first argument names a dataset (``"mosxav"``, ``"mosxav-synthetic"``, ``"endoscapes2023"``) or
is a local MOSXAV root. Images are stored as the original encoded bytes, so masks keep their mode
(palette / greyscale ids) and frames their JPEG encoding.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from mosxav.constants import CLASS_NAMES, SPLIT_PARTS
from mosxav.data.files import image_size, write_text
from mosxav.data.layout import MosxavLayout
from mosxav.data.named import resolve_root
from mosxav.errors import DataError

MASK_COLUMN = {"semantic": "semantic", "vos": "instance"}


def features(task: str) -> datasets.Features:
    """The schema: frames and masks as Image (bytes kept as encoded), ids, and the classes present."""
    return datasets.Features(
        {
            "image": datasets.Image(),
            MASK_COLUMN[task]: datasets.Image(),
            "sequence": datasets.Value("string"),
            "frame_index": datasets.Value("int32"),
            "frame": datasets.Value("string"),
            "annotated": datasets.Value("bool"),
            "classes_present": datasets.Sequence(datasets.ClassLabel(names=list(CLASS_NAMES))),
        }
    )


def _rows(root: str, split: str, task: str) -> Iterator[dict[str, Any]]:
    from mosxav.data.files import read_index_mask

    layout = MosxavLayout(root)
    key = "semantic_path" if task == "semantic" else "instance_path"
    for name in layout.sequences(split):
        for record in layout.frames(split, name):
            mask_path = getattr(record, key)
            present: list[int] = []
            if mask_path is not None:
                mask = read_index_mask(mask_path)
                frame_size = image_size(record.image_path)
                if mask.shape[::-1] != frame_size:
                    # the same refusal as MOSXAV's items: a mask must cover its frame pixel for pixel
                    raise DataError(
                        mask_path,
                        f"mask is {mask.shape[1]}x{mask.shape[0]} but its frame {record.image_path.name} "
                        f"is {frame_size[0]}x{frame_size[1]}",
                    )
                if task == "semantic":
                    present = [int(c) for c in np.unique(mask) if c > 0]
            yield {
                "image": {"bytes": record.image_path.read_bytes(), "path": record.image_path.name},
                MASK_COLUMN[task]: None
                if mask_path is None
                else {"bytes": mask_path.read_bytes(), "path": mask_path.name},
                "sequence": name,
                "frame_index": record.index,
                "frame": record.stem,
                "annotated": mask_path is not None,
                "classes_present": present,
            }


#: Split names other libraries use, and the MOSXAV split each means.
SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "training": "train", "testing": "test"}


def check_split(split: str) -> None:
    """A split MOSXAV has, or one error saying which it has (and which one an alias means)."""
    if split not in SPLIT_PARTS:
        hint = f" ({split!r} is {SPLIT_ALIASES[split]!r} here)" if split in SPLIT_ALIASES else ""
        raise ValueError(f"unknown split {split!r}: MOSXAV's splits are 'train', 'val' and 'test'{hint}")


def _without_wrapping(build: Callable[[], Any]) -> Any:
    """``build()``, with a ``DataError`` raised in the ``datasets`` generator raised as itself: ``datasets``
    wraps it in a ``DatasetGenerationError`` whose traceback buries the one line that names the file."""
    try:
        return build()
    except datasets.exceptions.DatasetGenerationError as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise cause from None


def build_split(root: str | Path, split: str, task: str = "semantic", cache_dir: str | None = None) -> datasets.Dataset:
    """One split of a MOSXAV root as a ``datasets.Dataset`` (written to an Arrow cache, streamed)."""
    if task not in MASK_COLUMN:
        raise ValueError(f"unknown task {task!r}; expected 'semantic' or 'vos'")
    check_split(split)
    return _without_wrapping(
        lambda: datasets.Dataset.from_generator(
            _rows,
            features=features(task),
            gen_kwargs={"root": str(Path(root).resolve()), "split": split, "task": task},
            cache_dir=cache_dir,
            split=datasets.Split(split),
        )
    )


def _available_splits(root: Path) -> list[str]:
    layout = MosxavLayout(root)
    return [s for s in SPLIT_PARTS if layout.has_split(s)]


def load_dataset(
    path: str,
    name: str | None = None,
    *,
    task: str = "semantic",
    split: str | None = None,
    root: str | Path | None = None,
    cache_dir: str | None = None,
    offline: bool | None = None,
):
    """Load MOSXAV (or a named relative) as a ``datasets.DatasetDict``, or a ``Dataset`` for one split.

    Args:
        path: ``"mosxav"`` (downloaded into ``$MOSXAV_HOME``), ``"mosxav-synthetic"`` (generated there
            on first use), ``"endoscapes2023"`` (give ``root``) or the path of a local MOSXAV root.
        name: unused (the ``datasets.load_dataset`` signature).
        task: ``"semantic"`` (class masks) or ``"vos"`` (instance masks).
        split: one split (``"train"``, ``"val"``, ``"test"``); None: every split the root holds.
        root: where a named dataset is (or goes), instead of the cache.
        cache_dir: the ``datasets`` cache for the Arrow files.
        offline: never download (default: ``$HF_HUB_OFFLINE`` or ``$MOSXAV_OFFLINE`` set).

    Returns:
        a ``DatasetDict`` of the splits, or the ``Dataset`` of ``split``.

    Raises:
        DataError: the root holds no split files, or a named dataset is absent and offline.
    """
    if split is not None:
        check_split(split)
    if path == "endoscapes2023":
        return _load_endoscapes(resolve_root(path, root), split, cache_dir)
    dataset_root = resolve_root(path, root, offline=offline)
    splits = [split] if split else _available_splits(dataset_root)
    if not splits:
        raise DataError(dataset_root, "no ImageSets split files found")
    built = {s: build_split(dataset_root, s, task, cache_dir) for s in splits}
    return built[split] if split else datasets.DatasetDict(built)


def _load_endoscapes(root: Path, split: str | None, cache_dir: str | None):
    from mosxav.data.endoscapes import EndoScapes2023

    def rows(split_name: str) -> Iterator[dict[str, Any]]:
        import io as _io

        from PIL import Image

        data = EndoScapes2023(root, split_name)
        for index in range(len(data)):
            item = data[index]
            buffer = _io.BytesIO()
            Image.fromarray(item["semantic"], mode="L").save(buffer, format="PNG")
            info = data.coco.loadImgs(data.image_ids[index])[0]
            yield {
                "image": {"bytes": (data.image_dir / info["file_name"]).read_bytes(), "path": info["file_name"]},
                "semantic": {"bytes": buffer.getvalue(), "path": f"{item['frame']}.png"},
                "frame": item["frame"],
                "classes_present": [int(c) for c in np.unique(item["semantic"]) if c > 0],
            }

    def build(split_name: str) -> datasets.Dataset:
        probe = EndoScapes2023(root, split_name)
        feats = datasets.Features(
            {
                "image": datasets.Image(),
                "semantic": datasets.Image(),
                "frame": datasets.Value("string"),
                "classes_present": datasets.Sequence(datasets.ClassLabel(names=list(probe.classes))),
            }
        )
        return datasets.Dataset.from_generator(
            rows,
            features=feats,
            gen_kwargs={"split_name": split_name},
            cache_dir=cache_dir,
            split=datasets.Split(split_name),
        )

    if split:
        return build(split)
    return datasets.DatasetDict(
        {s: build(s) for s in ("train", "val", "test") if (root / f"{s}_seg").is_dir() or (root / s).is_dir()}
    )


CARD_TEMPLATE = """---
{front_matter}---

# {title}

Exported by MOSXAV-Bench (`mosxav-bench export-hf`) from a dataset in the MOSXAV layout.

- Task: `{task}`; columns: `image` (frame), `{mask}` (ids as a {mask_kind} PNG, `None` on unannotated frames),
  `sequence`, `frame_index`, `frame`, `annotated`, `classes_present`.
- Classes: {classes}.
- Splits: {splits}.

Load it with `datasets.load_dataset("<this folder or repo>")`. Licence: {licence}

`metadata/` keeps what the official video evaluation needs beside the frames: each split's
`<split>_first_mask.json` (the frame each object first appears in, and which objects are unseen),
`objects.json` (each sequence's object ids and the class of each) and `labels.json` (class ids, names,
colours), so the MOSXAV J&F can be recomputed from this export.

## Citation

```bibtex
@article{{xi2025mosxav,
  title   = {{Robust Noisy Pseudo-label Learning for Semi-supervised Medical Image Segmentation Using Diffusion Model}},
  author  = {{Xi, Lin and Ma, Yingliang and Wang, Cheng and Howell, Sandra and Rinaldi, Aldo and Rhode, Kawal S.}},
  journal = {{arXiv preprint arXiv:2507.16429}},
  year    = {{2025}}
}}
```
{origin}
"""

#: The licence of MOSXAV itself (Xi et al.); a synthetic set made by this toolkit is the toolkit's (MIT).
MOSXAV_LICENCE = "cc-by-nc-sa-4.0"
SYNTHETIC_LICENCE = "mit"


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for ``rows`` examples."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if rows < limit:
            return label
    return "100K<n<1M"


def object_classes(root: Path, split: str) -> dict[str, dict[str, int]]:
    """Sequence -> object id -> class id: the semantic class under most of the object's pixels over its
    annotated frames (the map the official video evaluation's per-class scores rest on)."""
    from mosxav.data.files import read_index_mask

    layout = MosxavLayout(root)
    found: dict[str, dict[str, int]] = {}
    for name in layout.sequences(split):
        votes: dict[int, np.ndarray] = {}
        for record in layout.frames(split, name):
            if record.instance_path is None or record.semantic_path is None:
                continue
            instance, semantic = read_index_mask(record.instance_path), read_index_mask(record.semantic_path)
            for object_id in np.unique(instance):
                if object_id:
                    counts = np.bincount(semantic[instance == object_id], minlength=len(CLASS_NAMES))
                    votes[int(object_id)] = votes.get(int(object_id), 0) + counts[: len(CLASS_NAMES)]
        found[name] = {str(k): int(np.argmax(v)) for k, v in sorted(votes.items())}
    return found


def _copy_metadata(root: Path, staging: Path, splits: list[str]) -> None:
    """``metadata/``: each split's first-mask file, the object-to-class map, and labels.json."""
    import json

    layout = MosxavLayout(root)
    folder = staging / "metadata"
    folder.mkdir(parents=True, exist_ok=True)
    objects = {}
    for split in splits:
        first = layout.first_mask_file(split)
        if first is not None and first.is_file():
            shutil.copyfile(first, folder / first.name)
        objects[split] = object_classes(root, split)
        labels = layout.part_dir(split) / "labels.json"
        if labels.is_file() and not (folder / "labels.json").exists():
            shutil.copyfile(labels, folder / "labels.json")
    write_text(folder / "objects.json", json.dumps(objects, indent=1))


def export_hf(
    root: str | Path,
    out: str | Path,
    *,
    task: str = "semantic",
    max_shard_rows: int = 500,
    licence: str | None = None,
) -> Path:
    """Write parquet shards, ``metadata/`` and a README.md dataset card so the folder loads (and pushes)
    as is. ``licence``: default MOSXAV's, or the toolkit's for a synthetic set it generated."""
    root, out = Path(root), Path(out)
    synthetic = (root / "synth_config.json").is_file()
    if licence is None:
        licence = SYNTHETIC_LICENCE if synthetic else MOSXAV_LICENCE
    splits = _available_splits(root)
    if not splits:
        raise DataError(root, "no ImageSets split files found")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    try:
        counts = {}
        for split in splits:
            ds = build_split(root, split, task)
            n_shards = max(1, -(-len(ds) // max_shard_rows))
            for k in range(n_shards):
                ds.shard(n_shards, k, contiguous=True).to_parquet(
                    str(staging / "data" / f"{split}-{k:05d}-of-{n_shards:05d}.parquet")
                )
            counts[split] = len(ds)
        import yaml

        _copy_metadata(root, staging, splits)
        meta = {
            "pretty_name": "MOSXAV (synthetic, MOSXAV-Bench)" if synthetic else "MOSXAV",
            "license": licence,
            "size_categories": [size_category(sum(counts.values()))],
            "task_categories": ["image-segmentation"],
            "tags": ["medical", "x-ray-angiography", "video-object-segmentation", "semi-supervised"]
            + (["synthetic"] if synthetic else []),
            "configs": [
                {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits]}
            ],
        }
        write_text(
            staging / "README.md",
            CARD_TEMPLATE.format(
                front_matter=yaml.safe_dump(meta, sort_keys=False),
                title=f"{root.name} ({task})",
                task=task,
                mask=MASK_COLUMN[task],
                mask_kind="palette" if task == "vos" else "palette/greyscale",
                classes=", ".join(f"{i} {n}" for i, n in enumerate(CLASS_NAMES)),
                splits=", ".join(f"{s} ({n} frames)" for s, n in counts.items()),
                licence=licence,
                origin=(
                    "\nThis is a synthetic set made by MOSXAV-Bench's generator in MOSXAV's layout; cite the paper "
                    "above for the layout and classes.\n"
                    if synthetic
                    else ""
                ),
            ),
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
