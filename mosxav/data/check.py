"""Validate a MOSXAV root and list every problem with its file (``mosxav-bench check ROOT``).

Streams the dataset one file at a time, so checking costs the memory of one frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from mosxav.constants import (
    CLASS_COLOURS,
    INSTANCE_DIR,
    JPEG_DIR,
    LABELS_FILE,
    MAX_INSTANCES,
    NUM_CLASSES,
    OTHERS,
    SEMANTIC_DIR,
)
from mosxav.data.files import read_frame, read_index_mask, read_json
from mosxav.data.layout import (
    IMAGE_SUFFIXES,
    PART_SPLITS,
    MosxavLayout,
    files_by_stem,
    read_first_mask_json,
    read_split_file,
)
from mosxav.errors import DataError, Problem


def _check_sequence(part_dir: Path, part: str, name: str) -> Iterator[Problem]:
    frames = files_by_stem(part_dir / JPEG_DIR / name, IMAGE_SUFFIXES)
    if not frames:
        yield Problem(part_dir / JPEG_DIR / name, "sequence has no frames (folder missing or empty)")
        return
    stems = sorted(frames)
    if all(s.isdigit() for s in stems):
        numbers = sorted(int(s) for s in stems)
        gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        if gaps:
            yield Problem(
                part_dir / JPEG_DIR / name,
                f"missing frames {[f'{g:05d}' for g in gaps[:10]]}{' ...' if len(gaps) > 10 else ''}",
            )
    else:
        yield Problem(part_dir / JPEG_DIR / name, "frame names are not zero-padded numbers", "warning")
    shape = None
    for stem in stems:
        try:
            image = read_frame(frames[stem])
        except DataError as exc:
            yield Problem(exc.path, exc.problem)
            continue
        if shape is None:
            shape = image.shape
        elif image.shape != shape:
            yield Problem(
                frames[stem],
                f"frame is {image.shape[1]}x{image.shape[0]}, the sequence's first frame is {shape[1]}x{shape[0]}",
            )
    for folder, max_id, colours in (
        (SEMANTIC_DIR, NUM_CLASSES - 1, CLASS_COLOURS),
        (INSTANCE_DIR, MAX_INSTANCES[part], None),
    ):
        masks = files_by_stem(part_dir / folder / name, (".png",))
        for stem in sorted(set(masks) - set(frames)):
            yield Problem(masks[stem], "mask has no matching frame in JPEGImages")
        for path in masks.values():
            try:
                mask = read_index_mask(path, max_id=max_id, colours=colours)
            except DataError as exc:
                yield Problem(exc.path, exc.problem)
                continue
            if shape is not None and mask.shape != shape:
                yield Problem(path, f"mask is {mask.shape[1]}x{mask.shape[0]} but the frames are {shape[1]}x{shape[0]}")
            if folder == SEMANTIC_DIR and part != "test" and (mask == OTHERS).any():
                yield Problem(path, "class 5 (others) is expected in the test split only", "warning")


def check_dataset(root: str | Path, progress: Callable[[str], None] | None = None) -> list[Problem]:
    """Every problem found under ``root``; an empty list means the dataset is well-formed."""
    root = Path(root)
    if not root.is_dir():
        return [Problem(root, "dataset root does not exist or is not a folder")]
    parts = [p for p in PART_SPLITS if (root / p).is_dir()]
    if not parts:
        return [Problem(root, "neither trainval/ nor test/ found: not a MOSXAV root")]
    layout = MosxavLayout(root)
    problems: list[Problem] = []
    for part in parts:
        part_dir = root / part
        if (part_dir / LABELS_FILE).exists():
            try:
                read_json(part_dir / LABELS_FILE)
            except DataError as exc:
                problems.append(Problem(exc.path, exc.problem))
        else:
            problems.append(Problem(part_dir / LABELS_FILE, "labels.json missing", "warning"))
        listed: set[str] = set()
        for split in PART_SPLITS[part]:
            split_file = layout.split_file(split)
            try:
                names = read_split_file(split_file)
            except DataError as exc:
                problems.append(Problem(exc.path, exc.problem))
                continue
            for name in names:
                if not (part_dir / JPEG_DIR / name).is_dir():
                    problems.append(Problem(split_file, f"names sequence {name!r}, which has no folder in {JPEG_DIR}/"))
            listed.update(names)
            first_mask = layout.first_mask_file(split)  # the same file the dataset reads
            if first_mask is not None:
                try:
                    info = read_first_mask_json(first_mask)
                    for video in sorted(set(info) - set(names)):
                        problems.append(Problem(first_mask, f"video {video!r} is not in {split}.txt"))
                except DataError as exc:
                    problems.append(Problem(exc.path, exc.problem))
        on_disk = (
            sorted(p.name for p in (part_dir / JPEG_DIR).iterdir() if p.is_dir())
            if (part_dir / JPEG_DIR).is_dir()
            else []
        )
        for name in on_disk:
            if name not in listed:
                problems.append(Problem(part_dir / JPEG_DIR / name, "sequence is in no ImageSets split", "warning"))
        for name in sorted(listed & set(on_disk)):
            if progress:
                progress(f"{part}/{name}")
            problems.extend(_check_sequence(part_dir, part, name))
    return problems
