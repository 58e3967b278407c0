"""Reading and writing frames and masks, with errors that name the file and nothing half-written.

Masks are index images: palette (``P``) or greyscale (``L``) PNGs whose pixel values are ids.
Reading them never goes through RGB, because that would turn ids into palette colours.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mosxav.constants import CLASS_COLOURS, davis_palette, semantic_palette
from mosxav.data.png import plain_index_png
from mosxav.errors import DataError

#: Refuse images larger than this many pixels (decompression-bomb guard; 16k x 16k).
MAX_IMAGE_PIXELS = 16384 * 16384
#: Masks up to this size are read whole and decoded by ``png.plain_index_png`` where their layout allows.
MAX_READ_AHEAD_BYTES = 16 * 1024 * 1024


def _open(path: Path, data: bytes | None = None, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open and fully decode an image (from ``data`` when its bytes are already read), converting every
    failure into a DataError; one of more than ``max_pixels`` is refused from its header."""
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise DataError(
                    path, f"image of {image.width}x{image.height} pixels is too large (at most {max_pixels} pixels)"
                )
            image.load()
            return image
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(path, f"unreadable image ({exc.__class__.__name__}: {exc})") from None


def read_frame(path: str | Path) -> np.ndarray:
    """Read an angiography frame as a 2-D uint8 array (colour frames are converted to luminance)."""
    image = _open(Path(path))
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file from its header, without decoding its pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(path, f"not a readable image ({exc.__class__.__name__})") from None


def read_colour_frame(path: str | Path) -> np.ndarray:
    """Read a colour frame (laparoscopy, endoscopy) as an (H, W, 3) uint8 RGB array; a grey file gives
    three equal channels."""
    image = _open(Path(path))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)


def read_index_mask(
    path: str | Path,
    *,
    max_id: int | None = None,
    colours: Mapping[int, tuple[int, int, int]] | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """Read a mask of ids (palette or greyscale PNG) as a 2-D uint8 array.

    Args:
        path: the PNG.
        max_id: rejects ids out of range, naming the offending values.
        colours: accept an RGB mask whose every pixel is one of these id colours (MOSXAV's class colours).
        max_pixels: refuse a larger image from its header, before a pixel is inflated (an untrusted
            prediction is held to its ground-truth frame's size).

    Raises:
        DataError: unreadable, too large, of an unsupported mode, or with ids out of range.
    """
    path = Path(path)
    data = _small_file_bytes(path)
    array = None if data is None else plain_index_png(data, max_pixels)
    if array is None:
        array = _decode_index_mask(path, data, colours, max_pixels)
    if max_id is not None and array.size and int(array.max()) > max_id:
        too_large = np.unique(array[array > max_id])
        if too_large.size:
            raise DataError(path, f"ids {too_large.tolist()} out of range 0..{max_id}")
    return array


def _small_file_bytes(path: Path) -> bytes | None:
    """The bytes of a file up to ``MAX_READ_AHEAD_BYTES`` long (None for a longer one: Pillow reads that
    lazily, refusing too many pixels before decoding)."""
    try:
        if path.stat().st_size > MAX_READ_AHEAD_BYTES:
            return None
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"unreadable file ({exc.__class__.__name__}: {exc})") from None


def _decode_index_mask(
    path: Path, data: bytes | None, colours: Mapping[int, tuple[int, int, int]] | None, max_pixels: int
) -> np.ndarray:
    """The ids of a mask through Pillow: every layout ``png.plain_index_png`` leaves to it."""
    image = _open(path, data, max_pixels)
    if image.mode in ("P", "L"):
        array = np.asarray(image, dtype=np.uint8)
    elif image.mode in ("I", "I;16", "I;16B", "I;16L"):
        array32 = np.asarray(image, dtype=np.int64)
        if array32.min() < 0 or array32.max() > 255:
            raise DataError(path, f"mask values {array32.min()}..{array32.max()} do not fit class/instance ids")
        array = array32.astype(np.uint8)
    elif image.mode in ("RGB", "RGBA") and colours is not None:
        array = _rgb_to_ids(path, np.asarray(image.convert("RGB")), colours)
    elif image.mode == "1":
        array = np.asarray(image, dtype=np.uint8)
    else:
        raise DataError(path, f"mask has image mode {image.mode!r}; expected a palette (P) or greyscale (L) PNG")
    return array


def _rgb_to_ids(path: Path, rgb: np.ndarray, colours: Mapping[int, tuple[int, int, int]]) -> np.ndarray:
    """Map an RGB colour mask to ids, failing on any colour not in the table."""
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    out = np.full(packed.shape, 255, dtype=np.uint8)
    for cls, (r, g, b) in colours.items():
        out[packed == ((r << 16) | (g << 8) | b)] = cls
    unknown = out == 255
    if unknown.any():
        y, x = np.argwhere(unknown)[0]
        raise DataError(
            path,
            f"{int(unknown.sum())} pixels have colours outside the class table, "
            f"e.g. {tuple(rgb[y, x])} at (x={x}, y={y})",
        )
    return out


def _umask() -> int:
    """The process's umask (read by setting it and putting it back: the only portable way)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_to_group(folder: str | Path) -> None:
    """Give a folder made by ``tempfile.mkdtemp`` (0700) the mode ``mkdir`` would give it (0777 less the
    umask) once it is renamed into place."""
    os.chmod(folder, 0o777 & ~_umask())


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it into place only if the block succeeds. The
    file gets the mode a plain ``open`` would give it (0666 less the umask), not ``mkstemp``'s 0600, so
    a lab sharing a run folder can read every file of it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_index_mask(path: str | Path, mask: np.ndarray, *, palette: Sequence[int] | None = None) -> None:
    """Write ids as a palette PNG atomically (DAVIS palette unless another is given)."""
    if mask.ndim != 2:
        raise ValueError(f"{path}: a mask must be 2-D, got shape {mask.shape}")
    image = Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="P")
    image.putpalette(list(palette) if palette is not None else davis_palette())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def write_semantic_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write class ids as a palette PNG coloured with the MOSXAV class colours."""
    write_index_mask(path, mask, palette=semantic_palette())


def write_frame(path: str | Path, frame: np.ndarray, *, quality: int = 95) -> None:
    """Write a greyscale frame atomically; the format follows the suffix (.jpg or .png)."""
    image = Image.fromarray(np.asarray(frame, dtype=np.uint8), mode="L")
    fmt = "JPEG" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "PNG"
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically, indented for people."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Read YAML with ``yaml.safe_load`` only (no tags, no objects), naming the file on any error."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, f"{what} not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(path, f"malformed YAML ({exc})") from None


def read_untrusted_yaml(path: str | Path, what: str, max_bytes: int) -> Any:
    """Read YAML a stranger wrote: ``safe_load`` rules, at most ``max_bytes``, and no aliases.

    Aliases are refused because a few hundred bytes of nested ``*anchor`` references expand into
    gigabytes once the document is walked (stored, dumped as JSON, drawn on a page).
    """
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"YAML aliases (*name) are not allowed here (line {mark.line + 1})")
            return super().compose_node(parent, index)

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(path, f"{what} not found") from None
    if size > max_bytes:
        raise DataError(path, f"{what} is {size} bytes; at most {max_bytes} are read")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(path, f"malformed YAML ({exc})") from None


def read_json(path: str | Path) -> Any:
    """Read JSON, naming the file and the position of any syntax error."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"malformed JSON ({exc})") from None


__all__ = [
    "CLASS_COLOURS",
    "MAX_IMAGE_PIXELS",
    "atomic_path",
    "read_frame",
    "read_index_mask",
    "read_json",
    "read_untrusted_yaml",
    "read_yaml",
    "write_frame",
    "write_index_mask",
    "write_json",
    "write_semantic_mask",
    "write_text",
]
