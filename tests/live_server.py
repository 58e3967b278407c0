"""A live `mosxav-bench serve` for tests and benchmarks: started on 127.0.0.1 and a free port over a
ground truth, talked to over HTTP, stopped at the end."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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
    db: Path
    data: Path
    process: subprocess.Popen
    log: Path

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


def start_server(
    home: Path, gt: Path, *, workers: int = 2, lease: float = 3.0, max_upload_mb: int = 2, extra: tuple = ()
) -> Server:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home / "server.log"
    db, data = home / "leaderboard.sqlite", home / "data"
    command = [sys.executable, "-m", "mosxav_leaderboard.command_line", "serve", "--gt", str(gt)]
    command += ["--db", str(db), "--data", str(data), "--port", str(port), "--workers", str(workers)]
    command += ["--lease-seconds", str(lease), "--max-upload-mb", str(max_upload_mb), *extra]
    with open(log, "ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", home, db, data, process, log)
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


def upload(server: Server, token: str | None, data: bytes, *, phase: str = "test", name: str = "s.zip", **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    files = {"file": (name, data, "application/zip")}
    return httpx.post(server.url + "/api/submissions", headers=headers, files=files, data={"phase": phase}, **kw)


def wait_for(server: Server, token: str, job_id: int, timeout: float = 120) -> dict:
    return client.wait(server.url, token, job_id, timeout=timeout, poll=0.3)
