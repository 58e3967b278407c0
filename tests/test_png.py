"""The fast reader of plain index PNGs (mosxav.data.png) against Pillow, and its refusals."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mosxav.data import png
from mosxav.data.files import MAX_IMAGE_PIXELS, read_index_mask, write_index_mask, write_semantic_mask
from mosxav.errors import DataError

needs_zlib_ng = pytest.mark.skipif(png.zlib_ng is None, reason="zlib-ng not installed: Pillow reads every mask")


def _mask(shape: tuple[int, int] = (37, 53), ids: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    for _ in range(8):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        mask[y : y + rng.integers(2, 12), x : x + rng.integers(2, 20)] = rng.integers(1, ids)
    return mask


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(
    rows: np.ndarray, *, width: int, height: int, depth: int = 8, colour_type: int = 0, interlace: int = 0
) -> bytes:
    """A PNG of already filtered scanlines (each row: filter byte, samples), built chunk by chunk."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace)
    return (
        png.PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes()))
        + _chunk(b"IEND", b"")
    )


def _unfiltered(mask: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((mask.shape[0], 1), np.uint8), mask], axis=1)


@needs_zlib_ng
@pytest.mark.parametrize("writer", [write_semantic_mask, write_index_mask])
def test_masks_the_toolkit_writes_take_the_fast_path_and_read_as_pillow_does(tmp_path, writer):
    for seed, shape in enumerate([(37, 53), (512, 512), (1, 1), (480, 854)]):
        mask = _mask(shape, seed=seed)
        path = tmp_path / f"{seed}.png"
        writer(path, mask)
        fast = png.plain_index_png(path.read_bytes(), MAX_IMAGE_PIXELS)
        with Image.open(path) as image:
            assert image.mode == "P"
            reference = np.asarray(image)
        assert fast is not None, "a palette mask written here must not fall back to Pillow"
        assert fast.dtype == np.uint8 and fast.flags.c_contiguous
        np.testing.assert_array_equal(fast, reference)
        np.testing.assert_array_equal(read_index_mask(path), mask)


@needs_zlib_ng
def test_an_unfiltered_greyscale_png_is_read_and_a_filtered_one_is_left_to_pillow(tmp_path):
    mask = _mask((20, 30))
    plain = _png(_unfiltered(mask), width=30, height=20)
    np.testing.assert_array_equal(png.plain_index_png(plain, MAX_IMAGE_PIXELS), mask)
    filtered_rows = _unfiltered(mask)
    filtered_rows[5, 0] = 2  # row 5 stored with the Up filter: its samples are differences to row 4
    filtered_rows[5, 1:] = mask[5] - mask[4]  # uint8 wrap-around, as PNG does it
    data = _png(filtered_rows, width=30, height=20)
    assert png.plain_index_png(data, MAX_IMAGE_PIXELS) is None
    path = tmp_path / "filtered.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_index_mask(path), mask)  # Pillow undid the filter


@pytest.mark.parametrize(
    "header",
    [
        {"depth": 16, "colour_type": 0},  # 16-bit samples
        {"depth": 4, "colour_type": 3},  # packed palette indices
        {"depth": 8, "colour_type": 2},  # RGB
        {"depth": 8, "colour_type": 0, "interlace": 1},  # Adam7
        {"depth": 8, "colour_type": 3},  # a palette image without its PLTE chunk
    ],
)
def test_other_layouts_are_left_to_pillow(header):
    rows = _unfiltered(_mask((4, 6)))
    assert png.plain_index_png(_png(rows, width=6, height=4, **header), MAX_IMAGE_PIXELS) is None


@needs_zlib_ng
def test_damaged_files_fall_back_and_fail_with_the_file_named(tmp_path):
    good = _png(_unfiltered(_mask((20, 30))), width=30, height=20)
    idat = good.index(b"IDAT")
    bad_crc = bytearray(good)
    bad_crc[idat + 6] ^= 0xFF  # a byte of the zlib stream: the chunk's CRC no longer matches
    truncated = good[: idat + 12]
    short_stream = good[:8] + good[8 : idat - 4] + _chunk(b"IDAT", zlib.compress(b"\x00" * 40)) + _chunk(b"IEND", b"")
    for name, data in [("crc", bytes(bad_crc)), ("truncated", truncated), ("short", short_stream)]:
        assert png.plain_index_png(data, MAX_IMAGE_PIXELS) is None, name
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        with pytest.raises(DataError, match=f"{name}.png"):
            read_index_mask(path)


@needs_zlib_ng
def test_a_bomb_is_never_inflated(tmp_path):
    """A header claiming more pixels than allowed is not inflated here, and a small header over a stream
    that inflates far beyond it stops at one byte past the image."""
    huge = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    stream = zlib.compress(b"\x00" * (20001 * 20))  # only 20 rows: the inflater must not be reached
    data = png.PNG_SIGNATURE + _chunk(b"IHDR", huge) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")
    assert png.plain_index_png(data, MAX_IMAGE_PIXELS) is None
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    with pytest.raises(DataError, match=r"huge.png: unreadable image \(DecompressionBombError"):
        read_index_mask(path)
    long_stream = zlib.compress(b"\x00" * 50_000_000)  # 50 MB of zeros behind a 10 x 10 header
    data = _png(np.zeros((10, 11), np.uint8), width=10, height=10)
    data = data[: data.index(b"IDAT") - 4] + _chunk(b"IDAT", long_stream) + _chunk(b"IEND", b"")
    assert png.plain_index_png(data, MAX_IMAGE_PIXELS) is None


def test_without_zlib_ng_pillow_reads_every_mask(tmp_path, monkeypatch):
    monkeypatch.setattr(png, "zlib_ng", None)
    mask = _mask((40, 40))
    write_semantic_mask(tmp_path / "m.png", mask)
    assert png.plain_index_png((tmp_path / "m.png").read_bytes(), MAX_IMAGE_PIXELS) is None
    np.testing.assert_array_equal(read_index_mask(tmp_path / "m.png"), mask)
    with pytest.raises(DataError, match="missing.png: file not found"):
        read_index_mask(tmp_path / "missing.png")
