"""Workers on several machines, played by processes: one PostgreSQL, one shared uploads folder, a
server that scores nothing itself, and two standalone workers, each with its own scratch folder and
its own copy of the ground truth. Three teams upload ten submissions each at once against a limit of
five; one worker is killed (SIGKILL) in the middle of a job. Every accepted job is scored exactly
once, the limits hold, and nothing is lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("psycopg")

from live_server import Server, distinct_zips, start_server, upload, wait_for  # noqa: E402
from test_leaderboard import make_submission  # noqa: E402

TEAMS, UPLOADS, LIMIT = 3, 10, 5


def _machine_worker(server: Server, gt: Path, scratch: Path, log: Path) -> subprocess.Popen:
    """``mosxav-bench worker`` as it would run on another machine: the database URL, the shared uploads
    folder, and a ground truth and scratch folder of its own."""
    command = [sys.executable, "-m", "mosxav_leaderboard.command_line", "worker", "--gt", str(gt)]
    command += ["--db", server.db, "--uploads", str(server.uploads), "--data", str(scratch), "--lease-seconds", "3"]
    with open(log, "ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def _names(log: Path) -> str | None:
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"worker-start"' in line:
            return json.loads(line)["worker"]
    return None


@pytest.mark.slow
def test_two_machines_one_killed_mid_job_score_every_job_exactly_once(tiny_root, tmp_path, postgres_server):
    db = postgres_server.new_database()
    server = start_server(tmp_path / "server", tiny_root, db=db, workers=0)
    machines = []
    try:
        for name in ("a", "b"):
            gt = Path(shutil.copytree(tiny_root, tmp_path / name / "gt"))  # each machine's own copy
            machines.append((_machine_worker(server, gt, tmp_path / name / "scratch", tmp_path / f"{name}.log"), name))
        tokens = [server.team(f"lab-{t}", {"test": LIMIT}) for t in range(TEAMS)]
        zips = distinct_zips(make_submission(tiny_root, tmp_path / "perfect"), tmp_path / "subs", TEAMS * UPLOADS)
        bodies = {
            token: [z.read_bytes() for z in zips[t * UPLOADS : (t + 1) * UPLOADS]] for t, token in enumerate(tokens)
        }
        deadline = time.monotonic() + 30
        while not all(_names(tmp_path / f"{name}.log") for _, name in machines) and time.monotonic() < deadline:
            time.sleep(0.1)
        victim_name = _names(tmp_path / "a.log")
        assert victim_name and _names(tmp_path / "b.log"), "the workers did not start"

        answers: dict[str, list] = {token: [] for token in tokens}
        lock = threading.Lock()

        def send(token: str, body: bytes) -> None:
            answer = upload(server, token, body, timeout=60)
            with lock:
                answers[token].append(answer)

        threads = [threading.Thread(target=send, args=(t, b)) for t in tokens for b in bodies[t]]
        for thread in threads:
            thread.start()
        victim, victim_job = machines[0][0], None
        deadline = time.monotonic() + 60
        holding = "SELECT id FROM jobs WHERE status = 'scoring' AND lease_owner = :w"
        while victim_job is None and time.monotonic() < deadline:  # machine a dies in the middle of a job
            if server.rows(holding, w=victim_name):
                os.kill(victim.pid, signal.SIGSTOP)  # frozen: what it holds now is what it dies holding
                held = server.rows(holding, w=victim_name)
                if held:
                    os.kill(victim.pid, signal.SIGKILL)
                    victim_job = held[0][0]
                else:  # it finished that job between the two looks: let it take another
                    os.kill(victim.pid, signal.SIGCONT)
            time.sleep(0.005)
        for thread in threads:
            thread.join(120)
        assert victim_job is not None, "machine a never held a job"

        for token in tokens:
            assert sorted(a.status_code for a in answers[token]) == [202] * LIMIT + [429] * (UPLOADS - LIMIT)
        accepted = [(token, a.json()["id"]) for token in tokens for a in answers[token] if a.status_code == 202]
        outcomes = [wait_for(server, token, job, timeout=120) for token, job in accepted]
        assert [o["status"] for o in outcomes] == ["scored"] * TEAMS * LIMIT, outcomes
        retaken = {job: o for (_, job), o in zip(accepted, outcomes, strict=True)}[victim_job]
        assert retaken["attempts"] >= 2  # the killed machine's job, taken again by machine b once its lease ran out
        rows = server.rows("SELECT id, submission_id, scored_by FROM jobs ORDER BY id")
        assert len(rows) == TEAMS * LIMIT  # nothing over the limit was ever queued
        submission_ids = [r[1] for r in rows]
        assert None not in submission_ids and len(set(submission_ids)) == len(rows)
        assert server.rows("SELECT COUNT(*) FROM submissions") == [(TEAMS * LIMIT,)]
        assert server.rows("SELECT COUNT(*) FROM scores") == [(TEAMS * LIMIT,)]
        assert dict((r[0], r[2]) for r in rows)[victim_job] != victim_name  # b finished the victim's job
        assert not any(p.name != "predictions" for p in server.uploads.iterdir())  # uploads cleared once scored
        assert len(list((server.uploads / "predictions").iterdir())) == TEAMS * LIMIT  # kept where all can read
    finally:
        for process, _ in machines:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # in case the test stopped while it was frozen
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        server.stop()
        from mosxav_leaderboard.engine import dispose_engines

        dispose_engines()
        postgres_server.drop_database(db)
