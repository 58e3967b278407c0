"""Pictures a person can judge: class-colour overlays and contact sheets (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mosxav.constants import CLASS_COLOURS, CLASS_NAMES
from mosxav.data.files import atomic_path


def overlay(image: np.ndarray, mask: np.ndarray | None, alpha: float = 0.45) -> np.ndarray:
    """Blend class colours over a greyscale frame; an absent mask leaves the frame as is."""
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    if mask is not None:
        for cls, colour in CLASS_COLOURS.items():
            if cls == 0:
                continue
            where = mask == cls
            rgb[where] = (1 - alpha) * rgb[where] + alpha * np.asarray(colour, np.float32)
    return rgb.clip(0, 255).astype(np.uint8)


LEGEND_HEIGHT = 18


def contact_sheet(
    tiles: Sequence[tuple[np.ndarray, np.ndarray | None, str]], path: str | Path, columns: int = 6, tile: int = 192
) -> Path:
    """Save (image, mask, caption) tiles as a grid: each frame shown plain and with its overlay, and a
    legend of the class colours along the bottom."""
    path = Path(path)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * 2 * tile, rows * (tile + 14) + LEGEND_HEIGHT), "white")
    draw = ImageDraw.Draw(sheet)
    x = 4
    for cls, colour in CLASS_COLOURS.items():
        if cls == 0:
            continue
        y = rows * (tile + 14) + 3
        draw.rectangle((x, y, x + 12, y + 12), fill=tuple(colour), outline="black")
        name = CLASS_NAMES[cls].replace("_", " ")
        draw.text((x + 16, y), name, fill="black")
        x += 24 + int(draw.textlength(name))
    for k, (image, mask, caption) in enumerate(tiles):
        r, c = divmod(k, columns)
        x, y = c * 2 * tile, r * (tile + 14)
        plain = Image.fromarray(np.repeat(image[..., None], 3, axis=2)).resize((tile, tile))
        over = Image.fromarray(overlay(image, mask)).resize((tile, tile), Image.NEAREST)
        sheet.paste(plain, (x, y + 14))
        sheet.paste(over, (x + tile, y + 14))
        draw.text((x + 2, y + 1), caption, fill="black")
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
