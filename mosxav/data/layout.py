"""The MOSXAV on-disk layout (DAVIS style): where sequences, frames and masks live.

```
<root>/trainval/JPEGImages/vNN/00000.jpg
<root>/trainval/Annotations/vNN/00000.png            object ids (one per structure)
<root>/trainval/Annotations_Semantic/vNN/00000.png   class ids 0-5
<root>/trainval/ImageSets/{train,val}.txt, val_first_mask.json
<root>/trainval/labels.json
<root>/test/...                                       the same, with ImageSets/test.txt
```

Only paths are resolved here; pixels are read lazily by the dataset classes, so listing a
split costs directory reads, never image decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mosxav.constants import IMAGESETS_DIR, INSTANCE_DIR, JPEG_DIR, SEMANTIC_DIR, SPLIT_PARTS
from mosxav.data.files import read_json
from mosxav.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class FrameRecord:
    """One frame of one sequence and the files that belong to it (mask paths are None when unannotated)."""

    sequence: str
    stem: str
    index: int
    image_path: Path
    semantic_path: Path | None
    instance_path: Path | None

    @property
    def annotated(self) -> bool:
        return self.semantic_path is not None or self.instance_path is not None


def read_split_file(path: Path) -> list[str]:
    """Read an ImageSets file: one sequence name per line, blank lines and '#' comments ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "split file not found") from None
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    names = [name for name in names if name]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(path, f"sequences listed twice: {duplicates}")
    for name in names:
        if "/" in name or "\\" in name or name in (".", ".."):
            raise DataError(path, f"invalid sequence name {name!r}")
    return names


#: Which splits each part folder of a MOSXAV root holds (``trainval/``: train and val; ``test/``: test).
PART_SPLITS: dict[str, tuple[str, ...]] = {
    part: tuple(split for split, home in SPLIT_PARTS.items() if home == part)
    for part in dict.fromkeys(SPLIT_PARTS.values())
}


def files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes`` (any case), by stem, hidden files left out."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes and not p.name.startswith(".")}


class MosxavLayout:
    """Resolves the paths of a MOSXAV root (a folder holding ``trainval/`` and/or ``test/``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "dataset root does not exist or is not a folder")

    def part_dir(self, split: str) -> Path:
        if split not in SPLIT_PARTS:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_PARTS)}")
        return self.root / SPLIT_PARTS[split]

    def split_file(self, split: str) -> Path:
        return self.part_dir(split) / IMAGESETS_DIR / f"{split}.txt"

    def has_split(self, split: str) -> bool:
        return self.split_file(split).is_file()

    def sequences(self, split: str) -> list[str]:
        """Sequence names of an official split, in file order."""
        return read_split_file(self.split_file(split))

    def first_mask_file(self, split: str) -> Path | None:
        """``<split>_first_mask.json`` in ImageSets (or, failing that, beside it); None if absent."""
        for folder in (self.part_dir(split) / IMAGESETS_DIR, self.part_dir(split)):
            candidate = folder / f"{split}_first_mask.json"
            if candidate.is_file():
                return candidate
        return None

    def frames(self, split: str, sequence: str) -> list[FrameRecord]:
        """Every frame of a sequence in temporal order, with the masks it has."""
        part = self.part_dir(split)
        images = files_by_stem(part / JPEG_DIR / sequence, IMAGE_SUFFIXES)
        if not images:
            raise DataError(part / JPEG_DIR / sequence, "sequence has no frames (folder missing or empty)")
        semantic = files_by_stem(part / SEMANTIC_DIR / sequence, (".png",))
        instance = files_by_stem(part / INSTANCE_DIR / sequence, (".png",))
        orphans = sorted((set(semantic) | set(instance)) - set(images))
        if orphans:
            raise DataError(part / JPEG_DIR / sequence, f"masks without a frame: {orphans[:5]}")
        records = []
        for index, stem in enumerate(sorted(images)):
            records.append(FrameRecord(sequence, stem, index, images[stem], semantic.get(stem), instance.get(stem)))
        return records


def read_first_mask_json(path: str | Path) -> dict[str, dict]:
    """Parse a ``*_first_mask.json`` into ``{video: {"first": {obj: stem}, "seen": set, "unseen": set}}``.

    The schema is the one published with MOSXAV (``videos[v].frames[stem].objects``, plus
    ``seen_objects`` / ``unseen_objects``); anything else is reported with the file and key.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), dict):
        raise DataError(path, "expected an object with a 'videos' mapping")
    result: dict[str, dict] = {}
    for video, entry in data["videos"].items():
        where = f"videos.{video}"
        if not isinstance(entry, dict) or not isinstance(entry.get("frames"), dict):
            raise DataError(path, f"{where}: expected a 'frames' mapping")
        first: dict[str, str] = {}
        for stem, frame in entry["frames"].items():
            objects = frame.get("objects") if isinstance(frame, dict) else None
            if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
                raise DataError(path, f"{where}.frames.{stem}.objects: expected a list of object-id strings")
            for obj in objects:
                if not obj.isdigit():
                    raise DataError(path, f"{where}.frames.{stem}: object id {obj!r} is not a number")
                first.setdefault(obj, stem)
        seen = entry.get("seen_objects", [])
        unseen = entry.get("unseen_objects", [])
        if not isinstance(seen, list) or not isinstance(unseen, list):
            raise DataError(path, f"{where}: seen_objects/unseen_objects must be lists")
        result[video] = {"first": first, "seen": set(map(str, seen)), "unseen": set(map(str, unseen))}
    return result


def mask_frames(folder: Path) -> list[Path]:
    """The mask PNGs of one sequence folder in frame order (sorted names).

    This order is a definition, not a detail: it fixes which frames are scored, the dataset hash and
    the COCO image ids of submissions. Every such use calls this function.
    """
    return sorted(Path(folder).glob("*.png"))


def sequence_folders(path: str | Path, split: str | None, subdir: str) -> tuple[Path, list[str]]:
    """A folder of per-sequence mask folders and its sequence names, from a MOSXAV root (with
    ``split``: ``<part>/<subdir>`` restricted to the split file), a part folder, or the folder itself."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "folder not found")
    if split is not None and (path / SPLIT_PARTS[split] / subdir).is_dir():
        part = path / SPLIT_PARTS[split]
        return part / subdir, read_split_file(part / IMAGESETS_DIR / f"{split}.txt")
    if (path / subdir).is_dir():
        path = path / subdir
    names = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(path, "no sequence folders found")
    return path, names
