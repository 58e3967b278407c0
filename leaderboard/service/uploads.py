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

import asyncio
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from mosxav.data.archive import vet_zip
from mosxav.errors import DataError
from mosxav_leaderboard.columns import SUBMISSION_KINDS
from mosxav_leaderboard.service.accounts import Team
from mosxav_leaderboard.service.database import Database
from mosxav_leaderboard.service.settings import Phase, Settings
from mosxav_leaderboard.submission import SUBMISSION_LIMITS

_FIELDS = {"file", "phase", "kind"}
#: RFC 2046: a boundary is 1-70 characters.
MAX_BOUNDARY = 70
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: Threads checking and queueing uploads at once. The work is Python under one lock (the GIL), so
#: more threads only make each wait longer and starve the event loop; two keep a core busy while
#: one waits on the disk.
_CHECKERS = 2
_checkers: anyio.CapacityLimiter | None = None


class UploadRefused(Exception):
    """A problem with the upload itself, with the HTTP status that says so."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


async def stream_to_disk(
    chunks: AsyncIterator[bytes], target: Path, max_bytes: int, declared_length: str | None, idle_seconds: float
) -> int:
    """Write the body to ``target``; refuse with 413 once it passes ``max_bytes`` (or declares more),
    with 408 when the client sends nothing for ``idle_seconds``, with 400 when it goes away."""
    if declared_length is not None:
        if not declared_length.isdigit() or len(declared_length) > 18:
            raise UploadRefused(400, "Content-Length is not a number")
        if int(declared_length) > max_bytes:
            raise UploadRefused(413, f"upload of {int(declared_length)} bytes exceeds the limit of {max_bytes} bytes")
    written = 0
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    expired = []

    def expire() -> None:
        expired.append(True)
        task.cancel()

    timer = loop.call_later(idle_seconds, expire)  # re-armed per chunk: no task per chunk
    try:
        with open(target, "wb") as handle:
            async for chunk in chunks:
                timer.cancel()
                timer = loop.call_later(idle_seconds, expire)
                written += len(chunk)
                if written > max_bytes:
                    raise UploadRefused(413, f"upload exceeds the limit of {max_bytes} bytes")
                handle.write(chunk)
    except asyncio.CancelledError:
        if not expired:
            raise
        if hasattr(task, "uncancel"):
            task.uncancel()
        raise UploadRefused(408, f"the upload sent nothing for {idle_seconds:g} s; try again") from None
    except ClientDisconnect:
        raise UploadRefused(400, "the client went away during the upload") from None
    finally:
        timer.cancel()
    return written


@dataclass
class ParsedUpload:
    phase: str
    file: Path
    filename: str
    kind: str  # predictions or model


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
    if not 1 <= len(options[b"boundary"]) <= MAX_BOUNDARY:
        raise UploadRefused(400, f"the multipart boundary must be 1-{MAX_BOUNDARY} characters (RFC 2046)")
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
            raise UploadRefused(400, f"unexpected form field {name[:40]!r}; send 'file', 'phase' (and 'kind')")
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
                raise UploadRefused(400, f"form field {state['current']['name']!r} is too long")

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
    kind = parts.get("kind", {"value": b"predictions"})["value"].decode("utf-8", "replace").strip()
    if kind not in SUBMISSION_KINDS:
        raise UploadRefused(400, f"kind {kind[:40]!r} is not one of {list(SUBMISSION_KINDS)}")
    filename = safe_filename(parts["file"]["filename"])
    return ParsedUpload(phase, _settle(part_file, folder), filename, kind)


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


async def receive(request: Request, team: Team, settings: Settings, database: Database) -> int:
    """Stream an upload to the uploads folder, check it cheaply, and queue it; returns the submission id.

    Raises:
        UploadRefused: with the HTTP status and the reason (the upload's folder is removed).
        LimitReached: the phase's rules refuse another submission today.
    """
    folder = settings.upload_root / uuid.uuid4().hex
    folder.mkdir(parents=True)
    body = folder / "body"
    try:
        await stream_to_disk(
            request.stream(),
            body,
            settings.max_upload_bytes,
            request.headers.get("content-length"),
            settings.upload_idle_seconds,
        )
        content_type = request.headers.get("content-type")
        global _checkers
        if _checkers is None:
            _checkers = anyio.CapacityLimiter(_CHECKERS)  # made inside the server's event loop
        return await anyio.to_thread.run_sync(
            _check_and_queue, body, content_type, folder, team, settings, database, limiter=_checkers
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        body.unlink(missing_ok=True)


def _check_and_queue(
    body: Path, content_type: str | None, folder: Path, team: Team, settings: Settings, database: Database
) -> int:
    """Parse and vet the saved body, check the phase, queue the job (one thread hop for all of it)."""
    parsed = parse_multipart(body, content_type, folder)
    phase = _open_phase(settings, parsed.phase)
    if parsed.kind == "model":
        if not settings.models.enabled:
            raise UploadRefused(403, "this server takes predictions only: its organizers run no submitted models")
        if not phase.models:
            raise UploadRefused(403, f"the {phase.name} phase takes predictions only, not models")
    upload = parsed.file.relative_to(settings.upload_root).as_posix()
    return database.enqueue(
        team, phase.name, phase.per_day, upload, parsed.filename, parsed.kind, max_queued=settings.max_queued
    )


def _open_phase(settings: Settings, name: str) -> Phase:
    if name not in settings.phase_names:
        raise UploadRefused(400, f"phase {name[:40]!r} is not one of {list(settings.phase_names)}")
    phase = settings.phase(name)
    now = datetime.now(timezone.utc)
    state = phase.state(now)
    if state == "upcoming":
        raise UploadRefused(403, f"the {name} phase opens on {phase.opens:%Y-%m-%d %H:%M} UTC")
    if state == "closed":
        raise UploadRefused(403, f"the {name} phase closed on {phase.closes:%Y-%m-%d %H:%M} UTC")
    return phase
