"""A fast path for the PNGs masks are stored in: 8-bit palette or greyscale, not interlaced, every row
stored unfiltered (what Pillow writes for palette images, and the real MOSXAV annotations are).

Scoring reads two masks a frame; through Pillow, a 512 x 512 mask cost about 0.66 ms, three quarters of
it inflating the zlib stream with the zlib Pillow links (1.2.13 here). Here a mask is the stream inflated
by zlib-ng, each row's filter byte dropped: 70 us a mask on the synthetic test-sized set and the real
MOSXAV masks together, against Pillow's 662 (``bench/metrics.py`` reports the decoding share). With the
standard library's zlib this path is no faster than Pillow (723 us), so without zlib-ng it stands aside.
Any other PNG, and any PNG this reader finds odd (a bad CRC, a short or long stream, an unknown layout),
is left to Pillow: ``None`` means "decode it the general way", so errors keep Pillow's checks and wording.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:
    from zlib_ng import zlib_ng
except ImportError:  # pragma: no cover - a platform without a zlib-ng wheel: Pillow reads every mask
    zlib_ng = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: IHDR colour types read here: greyscale and palette, whose 8-bit samples are the ids themselves.
_INDEX_COLOUR_TYPES = (0, 3)
_CHUNK_HEAD = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")


def plain_index_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """The pixel values (H x W uint8) of an unfiltered 8-bit palette or greyscale PNG, or None for any
    other input, including every malformed one; images over ``max_pixels`` are never inflated here."""
    if zlib_ng is None or not data.startswith(PNG_SIGNATURE):
        return None
    chunks = _chunks(data)
    if chunks is None or not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != _IHDR.size:
        return None
    width, height, depth, colour_type, compression, filter_method, interlace = _IHDR.unpack(chunks[0][1])
    plain = depth == 8 and colour_type in _INDEX_COLOUR_TYPES and not (compression or filter_method or interlace)
    if not plain or width == 0 or height == 0 or width * height > max_pixels:
        return None
    if colour_type == 3 and not any(kind == b"PLTE" for kind, _ in chunks):  # a palette image needs its palette
        return None
    stream = b"".join(body for kind, body in chunks if kind == b"IDAT")
    size = (width + 1) * height
    inflater = zlib_ng.decompressobj()
    try:
        raw = inflater.decompress(stream, size + 1)
    except zlib_ng.error:
        return None
    if len(raw) != size or not inflater.eof:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():  # some row filtered (Sub, Up, Average, Paeth): Pillow undoes the filters
        return None
    return np.ascontiguousarray(rows[:, 1:])


def _chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """The (type, body) of every chunk up to IEND, or None when one is cut short or fails its CRC."""
    chunks = []
    position = len(PNG_SIGNATURE)
    while position + _CHUNK_HEAD.size <= len(data):
        length, kind = _CHUNK_HEAD.unpack_from(data, position)
        body_start = position + _CHUNK_HEAD.size
        end = body_start + length
        if end + 4 > len(data):
            return None
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(data[position + 4 : end]) != crc:
            return None
        if kind == b"IEND":
            return chunks
        chunks.append((kind, data[body_start:end]))
        position = end + 4
    return None
