"""Scoring workers: separate processes that claim jobs, score them and enter the result.

A worker holds a lease on its job and renews it from a heartbeat thread while it scores; if the worker
dies (SIGKILL, a crash, the machine), the lease runs out and another worker takes the job from the
start, up to ``max_attempts`` times. The result is written in one transaction that first checks the
lease is still this worker's, so a job enters the table exactly once. SIGTERM stops a worker
gracefully: a job in progress is handed back to the queue and the worker exits.

A server's worker lives and dies with its server: the kernel sends it SIGTERM when the server
process dies (``PR_SET_PDEATHSIG`` on Linux), and it also exits when its parent changes (any other
system). A standalone worker (``mosxav-bench worker``, beside a server on the same machine) joins
through the database and the data folder and outlives server restarts. Every worker scores only
with the ground truth the service was started with: each worker hashes its ground truth at start,
and stops as soon as the service's recorded fingerprint differs, so a restart with a corrected
``--gt`` can never be scored by a leftover of the old one. Each job records the hash that
scored it. Worker names are unique (host, process id and a random suffix).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

from mosxav.errors import DataError
from mosxav_leaderboard.board import score_submission
from mosxav_leaderboard.engine import quiet_logging, shown
from mosxav_leaderboard.model_runs import POLICY_STATE, ModelPolicy, ModelUsage, missing_frames, predict_submission
from mosxav_leaderboard.scoring import dataset_hash
from mosxav_leaderboard.service.database import Database, Job, fingerprint
from mosxav_leaderboard.service.settings import Settings
from mosxav_leaderboard.store import DuplicateSubmission
from mosxav_leaderboard.submission import SubmissionInvalid, unpack

log = logging.getLogger("mosxav.serve.worker")
GT_STATE = "gt_fingerprint"
#: A worker that has not reported for this long is taken for dead (it reports at least every 10 s).
LIVE_SECONDS = 30.0


class Stop(BaseException):
    """Raised in the scoring thread when the worker is told to stop."""


def ground_truth_hashes(settings: Settings) -> dict[str, str]:
    """Split -> hash of its ground-truth masks, for every phase's split the ground truth holds."""
    hashes = {}
    for phase in settings.phases:
        try:
            hashes[phase.split] = dataset_hash(settings.gt, phase.split)
        except (DataError, FileNotFoundError):
            continue
    return hashes


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def lower_this_thread() -> None:
    """Run the calling thread (and what it starts) at the lowest CPU priority (Linux: per thread).

    Scoring runs low so the server acknowledges uploads promptly; the worker's own thread, which
    holds SQLite's write lock in its short transactions, stays at normal priority, so a busy machine
    never leaves the server waiting on a lock held by a starved process.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _problems(exc: BaseException, settings: Settings, work: Path, upload: Path) -> list[dict[str, str]]:
    """The report a team sees: paths inside its submission, never the server's folders."""

    def inside(path: object) -> str:
        text = str(path)
        for prefix, replacement in (
            (str(work / "unpacked") + os.sep, ""),
            (str(work) + os.sep, ""),
            (str(upload), "upload.zip"),
            (str(settings.gt), "<ground truth>"),
            (str(settings.upload_root), "<server>"),
            (str(settings.data), "<server>"),
        ):
            text = text.replace(prefix, replacement)
        return text

    if isinstance(exc, SubmissionInvalid):
        return [{"path": inside(p.path), "message": inside(p.message)} for p in exc.problems]
    if isinstance(exc, DataError):
        return [{"path": inside(exc.path), "message": inside(exc.problem)}]
    return [{"path": ".", "message": f"internal error while scoring ({exc.__class__.__name__}); operators are told"}]


def process(
    settings: Settings,
    database: Database,
    job: Job,
    name: str,
    gt_hashes: dict[str, str],
    usage: ModelUsage | None = None,
) -> str:
    """Score one claimed job and record the outcome; returns the final status (or 'lost-lease').

    ``usage`` follows a model's CPU time while it runs (the heartbeat records it, so an attempt killed
    with its worker still counts); the job's total adds this attempt's to the earlier attempts'."""
    work = settings.data / "jobs" / str(job.id) / "work"
    upload = settings.upload_root / job.upload
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    split = settings.phase(job.phase).split
    policy = ModelPolicy.from_json(database.state(POLICY_STATE)) if job.kind == "model" else None
    outcome: dict[str, object] = {}
    usage = usage if usage is not None else ModelUsage()

    def score() -> None:
        lower_this_thread()
        try:
            source = upload
            if policy is not None:  # a model: the server makes the predictions first, then scores them alike
                source = unpack(upload, work)
                predict_submission(source, settings.gt, split, policy, settings.model_device, usage)
            outcome["scored"] = score_submission(
                source,
                settings.gt,
                database.store,
                work,
                split=split,
                dataset=job.phase,
                fractions=settings.fractions,
                duplicate_scope=f"team:{job.team_id}",
                data_hash=gt_hashes.get(split),
                workers=1,  # the service's parallelism is its number of workers
            )
        except Exception as exc:  # every failure becomes the team's report, never a dead worker
            outcome["error"] = exc

    scorer = threading.Thread(target=score, name=f"score-{job.id}", daemon=True)
    scorer.start()
    while scorer.is_alive():
        scorer.join(0.5)  # in slices, so SIGTERM's Stop reaches this thread promptly
    fields, problems = None, []
    error = outcome.get("error")
    if isinstance(error, DuplicateSubmission):
        problems = [database.duplicate_problem(error.existing_id)]
    elif isinstance(error, BaseException):
        if not isinstance(error, (SubmissionInvalid, DataError)):
            log.error("job %s: unexpected error", job.id, exc_info=error)
        problems = _problems(error, settings, work, upload)
    else:
        fields = {**outcome["scored"].fields, "provenance": job.kind}  # type: ignore[union-attr]
    status = database.record_result(
        job,
        name,
        gt_hashes.get(split, ""),
        fields,
        problems,
        ran=usage.ran or job.ran,
        compute_seconds=job.compute_seconds + usage.cpu_seconds,
    )
    shutil.rmtree(settings.data / "jobs" / str(job.id), ignore_errors=True)
    if status != "lost-lease":
        shutil.rmtree(upload.parent, ignore_errors=True)  # the predictions are kept in the store
    return status


def _heartbeat(database: Database, job: Job, name: str, lease: float, done: threading.Event, usage: ModelUsage) -> None:
    """Keep the lease, and record what the job's model has used so far: an attempt killed with its worker
    still counts its CPU seconds (and that it ran) against the team."""
    while not done.wait(min(lease / 3, 10.0)):
        database.beat(name)
        spent = job.compute_seconds + usage.cpu_seconds
        if not database.extend_lease(job.id, name, lease, compute_seconds=spent, ran=usage.ran or job.ran):
            return


def check_model_frames(settings: Settings, policy: ModelPolicy) -> None:
    """Refuse to run when a phase takes models but this ground truth lacks the frames to run them on
    (a server at its start; a worker on another machine, with its own copy, at its start too)."""
    if not policy.enabled:
        return
    splits = [phase.split for phase in settings.phases if phase.models]
    problem = missing_frames(settings.gt, splits)
    if problem is not None:
        raise ValueError(
            f"model submissions need the frames of {settings.gt} to run on: {problem}; add the images "
            "(JPEGImages), or set models: false for the phase in phases.yaml"
        )


class WrongGroundTruth(ValueError):
    """The service scores with another ground truth than this worker's (or none was recorded yet)."""


def run_worker(settings: Settings, parent_pid: int | None = None, once: bool = False) -> str:
    """The worker loop: a server's worker process (``parent_pid``) or a standalone worker (None).

    A server's worker dies with its server and ignores SIGINT (the server stops it with SIGTERM); a
    standalone one (``mosxav-bench worker``) outlives server restarts and stops on SIGINT or SIGTERM,
    handing back the job it holds. Both stop when the service's ground truth is not theirs.

    Returns:
        why it stopped: ``stopped`` (a signal), ``orphaned``, ``ground-truth-changed`` or ``idle`` (``once``).

    Raises:
        WrongGroundTruth: a standalone worker started against a service of another ground truth.
        ValueError: the service takes model submissions and this worker's ground truth lacks the
            frames to run them on.
    """
    quiet_logging()
    if parent_pid is not None:
        die_with_parent()
    name = worker_name()
    database = Database(settings.db, settings.store_home)
    gt_hashes = ground_truth_hashes(settings)
    mine = fingerprint(gt_hashes)
    recorded = database.state(GT_STATE)
    if parent_pid is None and recorded != mine:
        raise WrongGroundTruth(
            f"the service at {shown(settings.db)} scores with ground truth "
            f"{str(recorded)[:12] or 'none yet'}, "
            f"this worker's {settings.gt} is {mine[:12]}: start the server first, with the same --gt"
        )
    if parent_pid is None:  # a server checked its own frames; a worker elsewhere checks its copy's
        check_model_frames(settings, ModelPolicy.from_json(database.state(POLICY_STATE)))
    stopping = threading.Event()
    current: dict[str, int] = {}

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()
        if current:
            raise Stop()

    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal if parent_pid is None else signal.SIG_IGN)
    database.register_worker(name, socket.gethostname(), os.getpid(), mine)
    last_beat = time.monotonic()
    log.info(json.dumps({"event": "worker-start", "worker": name, "pid": os.getpid(), "gt": mine[:12]}))
    try:
        while not stopping.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                log.info(json.dumps({"event": "worker-orphaned", "worker": name}))
                return "orphaned"
            if database.state(GT_STATE) != mine:
                log.warning(json.dumps({"event": "worker-ground-truth-changed", "worker": name}))
                return "ground-truth-changed"
            if time.monotonic() - last_beat > 5.0:
                database.beat(name)
                last_beat = time.monotonic()
            job = database.claim(name, settings.lease_seconds, settings.max_attempts)
            if job is None:
                if once:
                    return "idle"
                stopping.wait(settings.poll_seconds)
                continue
            _run_job(settings, database, job, name, gt_hashes, current)
        return "stopped"
    finally:
        database.remove_worker(name)
        for number, handler in previous.items():  # a worker run inside another program leaves it as it was
            signal.signal(number, handler)


def _run_job(
    settings: Settings, database: Database, job: Job, name: str, gt_hashes: dict[str, str], current: dict[str, int]
) -> None:
    started = time.perf_counter()
    done = threading.Event()
    usage = ModelUsage()
    beat = threading.Thread(
        target=_heartbeat, args=(database, job, name, settings.lease_seconds, done, usage), daemon=True
    )
    beat.start()
    current["job"] = job.id
    try:
        status = process(settings, database, job, name, gt_hashes, usage)
    except Stop:
        database.requeue(job.id, name)
        status = "requeued"
    finally:
        current.clear()
        done.set()
    record = {"event": "job", "job": job.id, "phase": job.phase, "worker": name, "status": status}
    record |= {"attempt": job.attempts, "seconds": round(time.perf_counter() - started, 3)}
    log.info(json.dumps(record))
