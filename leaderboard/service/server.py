"""``mosxav-bench serve``: the app under uvicorn plus scoring worker processes, on one machine.

Workers are separate processes (spawned, so they share nothing with the server but the database
file and the data folder); a monitor restarts any that dies. On shutdown (SIGINT/SIGTERM to the
server) uvicorn finishes its requests, then each worker gets SIGTERM and hands back a job it is
scoring. Jobs left queued (or scoring under a dead worker's lease) are taken up on the next start.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from mosxav_leaderboard.service import jobs
from mosxav_leaderboard.service.app import ServiceConfig, create_app
from mosxav_leaderboard.service.worker import WorkerConfig, run_worker

log = logging.getLogger("mosxav.serve")


@dataclass(frozen=True)
class ServeOptions:
    gt: Path
    db: Path
    data: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    lease_seconds: float = jobs.LEASE_SECONDS
    max_upload_bytes: int | None = None
    secure_cookies: bool = False  # behind an HTTPS proxy: session cookies only over HTTPS


class WorkerPool:
    """Keeps ``n`` worker processes alive until ``stop``."""

    def __init__(self, config: WorkerConfig, n: int) -> None:
        self.config, self.n = config, n
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[str, multiprocessing.process.BaseProcess] = {}
        self.stopping = threading.Event()
        self.generation = 0

    def _start(self, slot: int) -> None:
        self.generation += 1
        name = f"worker-{slot}-{self.generation}"
        process = self.context.Process(target=run_worker, args=(self.config, name), name=name, daemon=False)
        process.start()
        self.processes[str(slot)] = process
        log.info('{"event": "worker-start", "worker": "%s", "pid": %d}', name, process.pid)

    def start(self) -> None:
        for slot in range(self.n):
            self._start(slot)
        threading.Thread(target=self._monitor, daemon=True).start()

    def _monitor(self) -> None:
        while not self.stopping.wait(1.0):
            for slot, process in list(self.processes.items()):
                if not process.is_alive() and not self.stopping.is_set():
                    log.warning('{"event": "worker-died", "worker": "%s", "exit": %s}', process.name, process.exitcode)
                    self._start(int(slot))

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        for process in self.processes.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker requeues its job and exits
        for process in self.processes.values():
            process.join(timeout)
            if process.is_alive():
                process.kill()


def serve(options: ServeOptions) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options.data.mkdir(parents=True, exist_ok=True)
    config = ServiceConfig(db=options.db, gt=options.gt, data=options.data, secure_cookies=options.secure_cookies)
    if options.max_upload_bytes is not None:
        config = dataclasses.replace(config, max_upload_bytes=options.max_upload_bytes)
    app = create_app(config)  # creates the tables before any worker opens the database
    pool = WorkerPool(WorkerConfig(options.db, options.gt, options.data, lease=options.lease_seconds), options.workers)
    pool.start()

    def stop_server(signum: int, frame: object) -> None:
        raise SystemExit(0)  # uvicorn re-raises the signal after its graceful shutdown; then stop the pool

    signal.signal(signal.SIGTERM, stop_server)
    signal.signal(signal.SIGINT, stop_server)
    try:
        server = uvicorn.Server(
            uvicorn.Config(app, host=options.host, port=options.port, log_level="warning", access_log=False)
        )
        server.run()
    finally:
        pool.stop()
