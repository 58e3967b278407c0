"""Upload bodies: streamed to disk under a hard cap, then parsed as multipart from the disk copy.

The request body is never held in memory and never written outside the server's data folder (a
framework's form parser would spool large parts to the system temp folder). The cap is checked on the
declared ``Content-Length`` before reading and on every chunk while reading, so an oversized upload is
refused with 413 as soon as it passes the cap, not after it has all arrived.

Multipart fields accepted: ``file`` (the submission folder as a ``.zip``, exactly what the local
``mosxav-bench submit`` accepts: ``submission.yaml`` with PNG masks or a COCO ``predictions.json``) and
``phase`` (``validation`` or ``test``); anything else is refused.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

from mosxav.data.archive import vet_zip
from mosxav.errors import DataError
from mosxav_leaderboard.submission import SUBMISSION_LIMITS

#: Largest upload accepted (a MOSXAV test submission zips to ~10-30 MB).
DEFAULT_MAX_BYTES = 256 * 1024**2
_FIELDS = {"file", "phase"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRefused(Exception):
    """A problem with the upload itself, with the HTTP status that says so."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


async def stream_to_disk(
    chunks: AsyncIterator[bytes], target: Path, max_bytes: int, declared_length: str | None
) -> int:
    """Write the body to ``target``; refuse with 413 once it passes ``max_bytes`` (or declares more)."""
    if declared_length is not None:
        if not declared_length.isdigit():
            raise UploadRefused(400, "Content-Length is not a number")
        if int(declared_length) > max_bytes:
            raise UploadRefused(413, f"upload of {int(declared_length)} bytes exceeds the limit of {max_bytes} bytes")
    written = 0
    with open(target, "wb") as handle:
        async for chunk in chunks:
            written += len(chunk)
            if written > max_bytes:
                raise UploadRefused(413, f"upload exceeds the limit of {max_bytes} bytes")
            handle.write(chunk)
    return written


@dataclass
class ParsedUpload:
    phase: str
    file: Path
    filename: str


def safe_filename(name: str) -> str:
    """The client's file name reduced to a harmless label (it never names a path on the server)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _SAFE_NAME.sub("_", base)[:100] or "upload"


def parse_multipart(body: Path, content_type: str | None, folder: Path) -> ParsedUpload:
    """Parse the saved body; the file part is checked and written to ``folder/upload.zip``."""
    if not content_type:
        raise UploadRefused(415, "expected Content-Type multipart/form-data")
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise UploadRefused(415, "expected Content-Type multipart/form-data with a boundary")
    state: dict = {"parts": [], "headers": {}, "field": b"", "value": b""}
    part_file = folder / "upload.part"

    def on_part_begin() -> None:
        state["headers"] = {}
        state["data"] = bytearray()
        state["sink"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disposition = state["headers"].get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if name not in _FIELDS:
            raise UploadRefused(400, f"unexpected form field {name!r}; send 'file' and 'phase'")
        if any(p["name"] == name for p in state["parts"]):
            raise UploadRefused(400, f"form field {name!r} sent twice")
        state["current"] = {"name": name, "filename": None if filename is None else filename.decode("utf-8", "replace")}
        if name == "file":
            state["sink"] = open(part_file, "wb")  # noqa: SIM115 - closed in on_part_end

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["sink"] is not None:
            state["sink"].write(data[start:end])
        else:
            state["data"] += data[start:end]
            if len(state["data"]) > 64:
                raise UploadRefused(400, "form field 'phase' is too long")

    def on_part_end() -> None:
        if state["sink"] is not None:
            state["sink"].close()
        state["parts"].append({**state["current"], "value": bytes(state["data"])})

    parser = MultipartParser(
        options[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        with open(body, "rb") as handle:
            while chunk := handle.read(1 << 20):
                parser.write(chunk)
        parser.finalize()
    except UploadRefused:
        raise
    except Exception as exc:  # python-multipart raises its own errors on malformed bodies
        raise UploadRefused(400, f"malformed multipart body ({exc.__class__.__name__})") from None
    finally:
        if state.get("sink") is not None and not state["sink"].closed:
            state["sink"].close()
    parts = {p["name"]: p for p in state["parts"]}
    if "file" not in parts or parts["file"]["filename"] is None:
        raise UploadRefused(400, "missing form field 'file' (the submission folder as a .zip)")
    phase = parts.get("phase", {"value": b"test"})["value"].decode("utf-8", "replace").strip()
    filename = safe_filename(parts["file"]["filename"])
    return ParsedUpload(phase, _settle(part_file, folder), filename)


def _settle(part_file: Path, folder: Path) -> Path:
    """Check the file is a zip whose members are safe to extract and give it its final name."""
    if not zipfile.is_zipfile(part_file):
        raise UploadRefused(
            415, "the file is not a .zip archive: zip the folder holding submission.yaml and the predictions"
        )
    try:
        vet_zip(part_file, SUBMISSION_LIMITS)
    except DataError as exc:
        raise UploadRefused(400, f"submission archive refused: {exc.problem}") from None
    target = folder / "upload.zip"
    os.replace(part_file, target)
    return target
