"""Scoring workers: separate processes that claim jobs, score them and enter the result.

A worker holds a lease on its job and renews it from a heartbeat thread while it scores; if the worker
dies (SIGKILL, a crash, the machine), the lease runs out and another worker takes the job from the
start. The result is written in one transaction that first checks the lease is still this worker's,
so a job enters the table exactly once. SIGTERM stops a worker gracefully: a job in progress is handed
back to the queue (``requeue``) and the worker exits; ``serve`` sends it on shutdown.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mosxav.errors import DataError
from mosxav_leaderboard.board import score_submission
from mosxav_leaderboard.service import jobs
from mosxav_leaderboard.service.jobs import PHASE_SPLITS
from mosxav_leaderboard.store import DuplicateSubmission, Store
from mosxav_leaderboard.submission import SubmissionInvalid

log = logging.getLogger("mosxav.serve.worker")


@dataclass(frozen=True)
class WorkerConfig:
    db: Path
    gt: Path
    data: Path  # the server's data folder: uploads and scratch live under data/jobs/<id>/
    lease: float = jobs.LEASE_SECONDS
    poll: float = 0.2


class Stop(BaseException):
    """Raised in the scoring thread when the worker is told to stop."""


def _problems(exc: BaseException, work: Path) -> list[dict[str, str]]:
    """The report a team sees: paths inside its submission, never the server's folders."""

    def inside(path: object) -> str:
        text = str(path)
        for prefix in (str(work / "unpacked") + os.sep, str(work) + os.sep):
            text = text.replace(prefix, "")
        return text

    if isinstance(exc, SubmissionInvalid):
        return [{"path": inside(p.path), "message": p.message} for p in exc.problems]
    if isinstance(exc, DuplicateSubmission):
        return [{"path": ".", "message": "identical predictions were already submitted; nothing new to score"}]
    if isinstance(exc, DataError):
        return [{"path": inside(exc.path), "message": exc.problem}]
    return [{"path": ".", "message": f"internal error while scoring ({exc.__class__.__name__}); operators are told"}]


def process(config: WorkerConfig, store: Store, job: jobs.Job, name: str) -> str:
    """Score one claimed job and record the outcome; returns the final status (or 'lost-lease')."""
    work = config.data / "jobs" / str(job.id) / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    split = PHASE_SPLITS[job.phase]
    scored, problems = None, None
    try:
        scored = score_submission(config.data / job.upload, config.gt, store, work, split=split, dataset=job.phase)
    except Exception as exc:  # every failure becomes the team's report, never a dead worker
        if not isinstance(exc, (SubmissionInvalid, DuplicateSubmission, DataError)):
            log.exception("job %s: unexpected error", job.id)
        problems = _problems(exc, work)
    status = "lost-lease"
    with store.transaction() as db:
        if jobs.holds_lease(db, job.id, name):
            if scored is not None:
                try:
                    submission_id = store.insert_submission(db, **scored.fields)
                except DuplicateSubmission as exc:
                    problems = _problems(exc, work)
                else:
                    jobs.finish(db, job.id, name, submission_id)
                    status = "scored"
            if problems is not None:
                jobs.fail(db, job.id, name, problems)
                status = "failed"
    shutil.rmtree(work, ignore_errors=True)
    return status


def _heartbeat(store: Store, job_id: int, name: str, lease: float, done: threading.Event) -> None:
    while not done.wait(lease / 3):
        with store.transaction() as db:
            if not jobs.extend_lease(db, job_id, name, lease):
                return


def run_worker(config: WorkerConfig, name: str, once: bool = False) -> None:
    """The worker loop (the target of a worker process)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.nice(19)  # scoring yields the CPU to the server process, so uploads are acknowledged promptly
    store = Store(config.db)
    stopping = threading.Event()
    current: dict[str, int] = {}

    def on_term(signum: int, frame: object) -> None:
        stopping.set()
        if current:
            raise Stop()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its workers with SIGTERM
    while not stopping.is_set():
        with store.transaction() as db:
            job = jobs.claim(db, name, config.lease)
        if job is None:
            if once:
                return
            stopping.wait(config.poll)
            continue
        started = time.perf_counter()
        done = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(store, job.id, name, config.lease, done), daemon=True)
        beat.start()
        current["job"] = job.id
        try:
            status = process(config, store, job, name)
        except Stop:
            with store.transaction() as db:
                jobs.requeue(db, job.id, name)
            status = "requeued"
        finally:
            current.clear()
            done.set()
        record = {"event": "job", "job": job.id, "phase": job.phase, "worker": name, "status": status}
        record |= {"attempt": job.attempts, "seconds": round(time.perf_counter() - started, 3)}
        log.info(json.dumps(record))
