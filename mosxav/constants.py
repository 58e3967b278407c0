"""Fixed facts of the MOSXAV dataset: class ids, names, colours and the on-disk layout names.

Kept in one place so that the loader, the synthetic generator, the checker and the
Hugging Face export cannot drift apart.
"""

from __future__ import annotations

#: Semantic class names indexed by class id. Id 5 ("others") occurs in the test split only.
CLASS_NAMES: tuple[str, ...] = (
    "background",
    "vessel",
    "contrast_catheter",
    "catheter",
    "balloon",
    "others",
)
NUM_CLASSES: int = len(CLASS_NAMES)
BACKGROUND, VESSEL, CONTRAST_CATHETER, CATHETER, BALLOON, OTHERS = range(NUM_CLASSES)
FOREGROUND_CLASSES: tuple[int, ...] = tuple(range(1, NUM_CLASSES))

#: RGB colour of each class as published by the dataset authors (background is black).
CLASS_COLOURS: dict[int, tuple[int, int, int]] = {
    0: (0, 0, 0),
    1: (85, 170, 255),
    2: (170, 255, 0),
    3: (249, 193, 0),
    4: (255, 0, 0),
    5: (244, 108, 59),
}

#: Largest instance id per split family (an instance is one structure: a vessel tree, a catheter, a balloon).
MAX_INSTANCES = {"trainval": 5, "test": 10}

#: Frame size of the real dataset; the synthetic generator may use others.
FRAME_SIZE = 512

JPEG_DIR = "JPEGImages"
INSTANCE_DIR = "Annotations"
SEMANTIC_DIR = "Annotations_Semantic"
IMAGESETS_DIR = "ImageSets"
LABELS_FILE = "labels.json"

#: Official split -> (top-level part folder, ImageSets file stem).
SPLIT_PARTS: dict[str, str] = {"train": "trainval", "val": "trainval", "test": "test"}


def semantic_palette() -> list[int]:
    """A 768-entry PIL palette: class colours first, the rest black."""
    palette = [0] * 768
    for cls, rgb in CLASS_COLOURS.items():
        palette[3 * cls : 3 * cls + 3] = list(rgb)
    return palette


def davis_palette() -> list[int]:
    """The DAVIS instance palette (bit-interleaved colour map used by DAVIS and YouTube-VOS)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette.extend((r, g, b))
    return palette


#: The mask value of a pixel without a label: every pixel of an unannotated frame (as DAVIS marks void
#: pixels, and as ``torch.nn.CrossEntropyLoss(ignore_index=255)`` skips them).
IGNORE_INDEX = 255
