"""``mosxav-bench submit PATH --server URL --token T``: upload with a progress bar, then wait for the row.

A folder is zipped first (into a temporary file, streamed from disk); the upload streams the zip in
chunks so the progress bar follows what has been sent.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from mosxav_leaderboard.columns import SUBMISSION_KINDS


class ServerUnreachable(ValueError):
    """The server cannot be reached: the CLI prints it as one line and exits 2."""


class ServerRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail
        super().__init__(f"server answered {status}: {detail}")


#: What each kind of submission leaves out of a run cell's folder (which holds both).
LEFT_OUT = {"predictions": "model", "model": "predictions"}


def zip_folder(folder: Path, target: Path, kind: str = "predictions") -> Path:
    """Zip a submission folder (regular files only, paths relative to the folder).

    A run cell's folder holds both its predictions and its model (``model/``): a predictions
    submission leaves the model out, a model submission the predictions.
    """
    left_out = folder / LEFT_OUT[kind]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                raise ValueError(f"{path}: symbolic links are not allowed in a submission")
            if path.is_file() and not path.is_relative_to(left_out):
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def _multipart(
    zip_path: Path, phase: str, kind: str, boundary: str, progress: Progress | None
) -> tuple[Iterator[bytes], int]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="phase"\r\n\r\n{phase}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{zip_path.name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = zip_path.stat().st_size
    total = len(head) + size + len(tail)
    task = progress.add_task("upload", total=total) if progress else None

    def chunks() -> Iterator[bytes]:
        yield head
        with open(zip_path, "rb") as handle:
            while block := handle.read(1 << 16):
                if progress is not None:
                    progress.advance(task, len(block))
                yield block
        yield tail

    return chunks(), total


def upload(
    server: str, token: str, path: Path, phase: str = "test", show_progress: bool = True, kind: str = "predictions"
) -> int:
    """Upload a submission folder or .zip; returns the submission id the server gave it.

    ``kind``: ``predictions`` (the masks) or ``model`` (a run cell's ``model/``, which the server runs).
    """
    if kind not in SUBMISSION_KINDS:
        raise ValueError(f"kind must be one of {list(SUBMISSION_KINDS)}")
    with tempfile.TemporaryDirectory(prefix="mosxav-upload-") as scratch:
        name = f"{path.name or 'submission'}.zip"
        zip_path = path if path.is_file() else zip_folder(path, Path(scratch) / name, kind)
        boundary = os.urandom(16).hex()
        columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, transient=True, disable=not show_progress) as progress:
            body, total = _multipart(zip_path, phase, kind, boundary, progress)
            response = _send(
                "POST",
                server.rstrip("/") + "/api/submissions",
                content=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(total),
                },
                timeout=httpx.Timeout(60.0, write=600.0),
            )
    if response.status_code != 202:
        raise ServerRefused(response.status_code, _detail(response))
    return int(response.json()["id"])


def _send(method: str, url: str, **options: Any) -> httpx.Response:
    """One HTTP request; a server that cannot be reached (refused, unknown host, timed out) is one line
    naming its address (``DataError``), never a traceback."""
    try:
        return httpx.request(method, url, **options)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        server = httpx.URL(url).copy_with(path="/", query=None)
        raise ServerUnreachable(f"{server}: could not reach the server: {reason}") from None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:500]


def status(server: str, token: str, submission_id: int) -> dict[str, Any]:
    response = _send(
        "GET", f"{server.rstrip('/')}/api/submissions/{submission_id}", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != 200:
        raise ServerRefused(response.status_code, _detail(response))
    return response.json()


def wait(server: str, token: str, submission_id: int, timeout: float = 1800.0, poll: float = 1.0) -> dict[str, Any]:
    """Poll until the submission is scored or failed (or ``timeout`` seconds pass)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = status(server, token, submission_id)
        if answer["status"] in ("scored", "failed") or time.monotonic() > deadline:
            return answer
        time.sleep(poll)


def publish(server: str, token: str, submission_id: int, published: bool = True) -> dict[str, Any]:
    """Show (or withdraw) a scored submission on the server's public table."""
    response = _send(
        "POST",
        f"{server.rstrip('/')}/api/submissions/{submission_id}/publish",
        params={"published": str(published).lower()},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        raise ServerRefused(response.status_code, _detail(response))
    return response.json()
