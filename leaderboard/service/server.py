"""``mosxav-bench serve``: the app under uvicorn plus scoring worker processes, on one machine.

Workers are separate processes (spawned, so they share nothing with the server but the database
file and the data folder); a monitor restarts any that dies. On shutdown (SIGINT/SIGTERM to the
server) uvicorn finishes its requests, then each worker gets SIGTERM and hands back a job it is
scoring; if the server is killed outright, its workers get SIGTERM from the kernel. Jobs left queued
(or scoring under a dead worker's lease) are taken up on the next start.

At start the server records the fingerprint of its ground truth, refuses to run while workers of
another ground truth are alive, and clears what earlier runs left in the data folder (uploads no job
waits for, scratch folders of jobs no worker holds). Workers may also run on their own
(``mosxav-bench worker``, ``run_worker`` without a parent): they outlive a server restart and stop
when the service's ground truth changes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import threading
from datetime import datetime, timezone
from pathlib import PurePosixPath

import uvicorn

from mosxav_leaderboard.engine import quiet_logging
from mosxav_leaderboard.model_runs import POLICY_STATE
from mosxav_leaderboard.service.app import create_app
from mosxav_leaderboard.service.closes import hold_closes
from mosxav_leaderboard.service.database import Database, fingerprint
from mosxav_leaderboard.service.protocol import HeaderDeadlineProtocol
from mosxav_leaderboard.service.settings import Settings
from mosxav_leaderboard.service.worker import (
    GT_STATE,
    LIVE_SECONDS,
    check_model_frames,
    ground_truth_hashes,
    run_worker,
)

log = logging.getLogger("mosxav.serve")
#: An upload's folder name (``uploads.receive``): anything else in the shared folder is not the sweep's.
UPLOAD_FOLDER = re.compile(r"[0-9a-f]{32}")


class WorkerPool:
    """Keeps ``n`` worker processes alive until ``stop``."""

    def __init__(self, settings: Settings, n: int) -> None:
        self.settings, self.n = settings, n
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self.stopping = threading.Event()

    def _start(self, slot: int) -> None:
        process = self.context.Process(target=run_worker, args=(self.settings, os.getpid()), daemon=False)
        process.start()
        self.processes[slot] = process

    def start(self) -> None:
        for slot in range(self.n):
            self._start(slot)
        threading.Thread(target=self._monitor, daemon=True).start()

    def _monitor(self) -> None:
        while not self.stopping.wait(1.0):
            for slot, process in list(self.processes.items()):
                if not process.is_alive() and not self.stopping.is_set():
                    log.warning(json.dumps({"event": "worker-died", "pid": process.pid, "exit": process.exitcode}))
                    self._start(slot)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        for process in self.processes.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker requeues its job and exits
        for process in self.processes.values():
            process.join(timeout)
            if process.is_alive():
                process.kill()


def claim_ground_truth(settings: Settings, database: Database) -> str:
    """Record this server's ground-truth fingerprint; refuse while workers of another one run."""
    mine = fingerprint(ground_truth_hashes(settings))
    others = [w for w in database.live_workers(LIVE_SECONDS) if w["gt_hash"] != mine]
    if others:
        names = ", ".join(f"{w['name']} (pid {w['pid']} on {w['host']})" for w in others[:5])
        raise ValueError(
            f"{len(others)} worker(s) scoring with another ground truth are alive: {names}; stop them "
            f"(or wait {LIVE_SECONDS:g} s after they died) before serving {settings.gt}"
        )
    database.set_state(GT_STATE, mine)
    return mine


def sweep(settings: Settings, database: Database) -> int:
    """Remove uploads no queued or scoring job refers to, and the scratch folders of jobs no worker
    holds (a standalone ``mosxav-bench worker`` may be scoring while the server restarts)."""
    live = {PurePosixPath(u).parts[0] for u in database.live_uploads()}
    removed = 0
    uploads = settings.upload_root
    if uploads.is_dir():
        for folder in uploads.iterdir():
            if UPLOAD_FOLDER.fullmatch(folder.name) and folder.name not in live:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    scratch = settings.data / "jobs"
    if scratch.is_dir():
        leased = {str(job) for job in database.leased_jobs()}
        for folder in scratch.iterdir():
            if folder.name not in leased:
                shutil.rmtree(folder, ignore_errors=True)
    return removed


def serve(settings: Settings) -> None:
    quiet_logging()
    settings.data.mkdir(parents=True, exist_ok=True)
    settings.upload_root.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)  # creates the tables before any worker opens the database
    database: Database = app.state.database
    claim_ground_truth(settings, database)
    hold_closes(database, settings.phases, datetime.now(timezone.utc), settings.reopen)
    check_model_frames(settings, settings.models)
    database.set_state(POLICY_STATE, settings.models.to_json())  # workers on every machine follow it
    log.info(json.dumps({"event": "sweep", "removed": sweep(settings, database)}))
    pool = WorkerPool(settings, settings.workers)
    pool.start()

    def stop_server(signum: int, frame: object) -> None:
        raise SystemExit(0)  # uvicorn re-raises the signal after its graceful shutdown; then stop the pool

    signal.signal(signal.SIGTERM, stop_server)
    signal.signal(signal.SIGINT, stop_server)
    try:
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            proxy_headers=settings.public_url is not None,
            forwarded_allow_ips=settings.trusted_proxies,
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=64 * 1024,
            http=HeaderDeadlineProtocol,  # slow request headers end the connection (slowloris)
        )
        uvicorn.Server(config).run()
    finally:
        pool.stop()
