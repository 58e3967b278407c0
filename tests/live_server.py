"""A live `mosxav-bench serve` for tests and benchmarks: started on 127.0.0.1 and a free port over a
ground truth, talked to over HTTP, stopped at the end."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

from mosxav.data.files import read_index_mask, write_semantic_mask
from mosxav_leaderboard.engine import sqlite_file
from mosxav_leaderboard.service import client
from mosxav_leaderboard.service.database import Database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    home: Path
    db: str  # a SQLite file's path or a PostgreSQL URL
    data: Path
    uploads: Path
    process: subprocess.Popen
    log: Path

    @property
    def backend(self) -> str:
        return "sqlite" if sqlite_file(self.db) else "postgresql"

    def rows(self, sql: str, **params: object) -> list[tuple]:
        """The rows a SQL query (``:name`` parameters) returns from the server's database."""
        return query(self.db, sql, **params)

    def team(self, name: str, per_day: dict[str, int] | None = None) -> str:
        """A new team's token (straight into the database, as `admin add-team` does)."""
        database = Database(self.db)
        team, token = database.add_team(name)
        for phase, limit in (per_day or {}).items():
            database.set_limit(team.name, phase, limit)
        return token

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def query(db: str | Path, sql: str, **params: object) -> list[tuple]:
    """The rows a SQL query (``:name`` parameters) returns from a leaderboard database."""
    with Database(db).reading() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params)]


def start_server(
    home: Path,
    gt: Path,
    *,
    db: str | None = None,
    workers: int = 2,
    lease: float = 3.0,
    max_upload_mb: int = 2,
    extra: tuple = (),
) -> Server:
    """A server over ``gt``; ``db`` a PostgreSQL URL (its uploads folder then ``home/uploads``), or a
    SQLite file in ``home`` by default (uploads in the data folder, as ``serve`` defaults them)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home / "server.log"
    db = db or str(home / "leaderboard.sqlite")
    data = home / "data"
    uploads = data / "uploads" if sqlite_file(db) else home / "uploads"
    command = [sys.executable, "-m", "mosxav_leaderboard.command_line", "serve", "--gt", str(gt)]
    command += ["--db", db, "--data", str(data), "--port", str(port), "--workers", str(workers)]
    command += ["--lease-seconds", str(lease), "--max-upload-mb", str(max_upload_mb)]
    if "--max-queued" not in extra:  # tests of other rules upload many at once: the queue's cap is tested apart
        command += ["--max-queued", "1000"]
    command += [*extra]
    if not sqlite_file(db):
        command += ["--uploads", str(uploads)]
    with open(log, "ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", home, db, data, uploads, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    server.stop()
    raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")


def upload(
    server: Server,
    token: str | None,
    data: bytes,
    *,
    phase: str = "test",
    name: str = "s.zip",
    kind: str | None = None,
    **kw,
):
    """POST a zip as a team would (``kind``: the form field naming predictions or a model; None sends none)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    files = {"file": (name, data, "application/zip")}
    form = {"phase": phase} | ({"kind": kind} if kind is not None else {})
    return httpx.post(server.url + "/api/submissions", headers=headers, files=files, data=form, **kw)


def wait_for(server: Server, token: str, job_id: int, timeout: float = 120) -> dict:
    return client.wait(server.url, token, job_id, timeout=timeout, poll=0.3)


def distinct_zips(submission: Path, out: Path, count: int) -> list[Path]:
    """``count`` zipped copies of the ``submission`` folder, copy k with pixel k of its first mask flipped:
    each a distinct prediction, so none is refused as a duplicate (and none fails, freeing a slot)."""
    zips = []
    for k in range(count):
        folder = Path(shutil.copytree(submission, out / f"v{k}"))
        first = sorted((folder / "predictions").rglob("*.png"))[0]
        mask = read_index_mask(first).copy()
        flat = mask.reshape(-1)
        flat[k % flat.size] = 1 if flat[k % flat.size] == 0 else 0
        write_semantic_mask(first, mask)
        zips.append(client.zip_folder(folder, out / f"v{k}.zip"))
    return zips
