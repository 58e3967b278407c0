"""Pictures a person can judge: class-colour overlays and contact sheets (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


#: Heights of the caption strip above each tile pair and of the legend, and the text size: legible when
#: the sheet is printed at a paper's column width (about 15 px text on 192-px tiles).
CAPTION_HEIGHT = 24
LEGEND_HEIGHT = 26
TEXT_SIZE = 15


def _font(size: int = TEXT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels (a caption never runs into its neighbour's)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(
    tiles: Sequence[tuple[np.ndarray, np.ndarray | None, str]], path: str | Path, columns: int = 6, tile: int = 192
) -> Path:
    """Save (image, mask, caption) tiles as a grid: each frame shown plain (left) and with its overlay
    (right) under its caption, and a legend of the class colours along the bottom."""
    path = Path(path)
    rows = (len(tiles) + columns - 1) // columns
    height = rows * (tile + CAPTION_HEIGHT) + LEGEND_HEIGHT
    sheet = Image.new("RGB", (columns * 2 * tile, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font()
    x = 6
    for cls, colour in CLASS_COLOURS.items():
        if cls == 0:
            continue
        y = rows * (tile + CAPTION_HEIGHT) + 5
        draw.rectangle((x, y, x + 14, y + 14), fill=tuple(colour), outline="black")
        name = CLASS_NAMES[cls].replace("_", " ")
        draw.text((x + 18, y - 1), name, fill="black", font=font)
        x += 32 + int(draw.textlength(name, font=font))
    for k, (image, mask, caption) in enumerate(tiles):
        r, c = divmod(k, columns)
        x, y = c * 2 * tile, r * (tile + CAPTION_HEIGHT)
        plain = Image.fromarray(np.repeat(image[..., None], 3, axis=2)).resize((tile, tile))
        over = Image.fromarray(overlay(image, mask)).resize((tile, tile), Image.NEAREST)
        sheet.paste(plain, (x, y + CAPTION_HEIGHT))
        sheet.paste(over, (x + tile, y + CAPTION_HEIGHT))
        draw.text((x + 4, y + 3), _fit(draw, caption, 2 * tile - 10, font), fill="black", font=font)
        if c:  # a thin rule between tile pairs, so one pair's overlay is not read as the next one's image
            draw.line((x, y, x, y + tile + CAPTION_HEIGHT), fill=(180, 180, 180))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
