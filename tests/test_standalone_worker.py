"""`mosxav-bench worker`: a scoring worker of its own beside a server, joined through the database and
the data folder; it outlives a server restart and keeps its ground truth's promise."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from live_server import Server, start_server, upload, wait_for  # noqa: E402

from mosxav.constants import SEMANTIC_DIR  # noqa: E402
from mosxav.data.files import read_index_mask, write_semantic_mask  # noqa: E402
from mosxav.data.layout import sequence_folders  # noqa: E402


def _worker(server: Server, gt: Path, log: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "mosxav_leaderboard.command_line", "worker", "--gt", str(gt)]
    command += ["--db", str(server.db), "--data", str(server.data), *extra]
    with open(log, "ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def _scored_by(server: Server, job: int) -> str:
    [(scored_by,)] = server.rows("SELECT scored_by FROM jobs WHERE id = :id", id=job)
    return scored_by


def _logs(server: Server, worker_log: Path) -> str:
    """The ends of the server's and the worker's logs (what a failure here needs to be read)."""
    return f"server:\n{server.log.read_text()[-2000:]}\nworker:\n{worker_log.read_text()[-2000:]}"


def _other_ground_truth(tiny_copy: Path) -> Path:
    root, names = sequence_folders(tiny_copy, "test", SEMANTIC_DIR)
    first = sorted((root / names[0]).glob("*.png"))[0]
    mask = read_index_mask(first).copy()
    mask[0, 0] = 1 if mask[0, 0] == 0 else 0
    write_semantic_mask(first, mask)
    return tiny_copy


@pytest.mark.slow
def test_a_standalone_worker_scores_outlives_a_restart_and_blocks_another_ground_truth(
    tiny_root, tiny_copy, tmp_path, perfect_zip
):
    home = tmp_path / "service"
    server = start_server(home, tiny_root, workers=0)
    log = tmp_path / "worker.log"
    worker = None
    try:
        token = server.team("solo")
        worker = _worker(server, tiny_root, log)
        job = upload(server, token, perfect_zip.read_bytes()).json()["id"]
        assert wait_for(server, token, job)["status"] == "scored", _logs(server, log)
        assert f"-{worker.pid}-" in _scored_by(server, job), _logs(server, log)  # host-pid-random: this worker

        server.stop()  # the standalone worker lives on; a restarted server finds it
        assert worker.poll() is None, _logs(server, log)
        server = start_server(home, tiny_root, workers=0)
        second = upload(server, token, perfect_zip.read_bytes(), name="again.zip").json()["id"]
        done = wait_for(server, token, second)
        assert done["status"] == "failed" and "already" in done["problems"][0]["message"], (done, _logs(server, log))
        assert f"-{worker.pid}-" in _scored_by(server, second), _logs(server, log)
        server.stop()

        with pytest.raises(RuntimeError, match="another ground truth"):  # the live worker scores the old one
            start_server(tmp_path / "other", _other_ground_truth(tiny_copy), workers=0, extra=("--db", str(server.db)))
        worker.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop
        assert worker.wait(30) == 0, log.read_text()[-2000:]
        assert "worker stopped: stopped" in log.read_text()
    finally:
        server.stop()
        if worker is not None and worker.poll() is None:
            worker.kill()


@pytest.mark.slow
def test_a_standalone_worker_refuses_a_service_of_another_ground_truth(tiny_root, tiny_copy, tmp_path):
    server = start_server(tmp_path / "service", tiny_root, workers=0)
    try:
        log = tmp_path / "worker.log"
        worker = _worker(server, _other_ground_truth(tiny_copy), log, "--once")
        assert worker.wait(60) == 2
        text = log.read_text()
        assert "start the server first, with the same --gt" in text and "Traceback" not in text
    finally:
        server.stop()


@pytest.mark.slow
def test_a_restart_keeps_the_scratch_of_a_job_a_worker_holds(tiny_root, tmp_path):
    from mosxav_leaderboard.service.database import Database
    from mosxav_leaderboard.service.server import sweep
    from mosxav_leaderboard.service.settings import Settings

    settings = Settings(gt=tiny_root, db=tmp_path / "lb.sqlite", data=tmp_path / "data", workers=0)
    database = Database(settings.db)
    team, _ = database.add_team("t")
    held = database.enqueue(team, "test", 10, "uploads/a/upload.zip", "a.zip")
    left = database.enqueue(team, "test", 10, "uploads/b/upload.zip", "b.zip")
    assert database.claim("w-1", 60.0, 3).id == held
    for job in (held, left):
        (settings.data / "jobs" / str(job) / "work").mkdir(parents=True)
    sweep(settings, database)
    assert (settings.data / "jobs" / str(held)).is_dir() and not (settings.data / "jobs" / str(left)).exists()
