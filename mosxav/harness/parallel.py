"""The cells of one run trained side by side in worker processes, on a machine without an accelerator.

Why: the small U-Nets of a CPU run use two cores poorly: one training step on one thread is not much
slower than on two, so cells trained at once, one thread each, finish sooner than one after another
(the figures are in docs/runs.md). A cell's numbers do not depend on it (up to the floating-point
rounding of a different thread count); GPU runs and ``torchrun`` keep one process.

Cells start most expensive first (``Method.relative_step_cost`` x iterations), so the run ends when
its longest cell does, not when a long cell started last does. Each worker reports its trainer's
progress to the parent's bar through a queue. Workers (and the queue's manager) ignore Ctrl-C: the
parent alone takes it, stops every worker at once and lets the interrupt end the run, so one press
stops everything (cells keep their last checkpoints, and the same command resumes them).
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.progress import Progress

from mosxav.harness.config import RunConfig
from mosxav.harness.events import CellEvents
from mosxav.harness.plan import CellPlan
from mosxav.training.distributed import DistContext, resolve_device

#: What a worker runs: (cell, config, run folder, progress sink) -> the cell's scored per-frame table.
CellJob = Callable[[CellPlan, RunConfig, Path, Any], pd.DataFrame]


def default_jobs(config: RunConfig, plans: list[CellPlan], dist: DistContext) -> int:
    """One cell per core on a CPU (never more than the cells that train); one on a GPU or under torchrun."""
    if dist.enabled or resolve_device(config.device, dist).type != "cpu":
        return 1
    trained = sum(1 for plan in plans if plan.trained)
    return max(1, min(os.cpu_count() or 1, trained))


class QueueProgress:
    """The two calls a ``Trainer`` makes on a rich ``Progress``, forwarded to the parent's bar under the
    cell's tag; ``label`` goes before the trainer's description (which starts with the tag's last part)."""

    def __init__(self, events: Any, key: str, label: str) -> None:
        self.events = events
        self.key = key
        self.label = label

    def add_task(self, description: str, total: float, completed: float = 0) -> str:
        self.events.put(("add", self.key, f"{self.label} {description}", total, completed))
        return self.key

    def update(self, task: str, completed: float, description: str) -> None:
        self.events.put(("update", task, f"{self.label} {description}", None, completed))


def _relay(events: Any, progress: Progress, stop: threading.Event, cells: CellEvents | None = None) -> None:
    """Apply the workers' progress events to the parent's bar until ``stop`` is set and the queue is empty
    (a cell's first event is its start, a line for ``cells``)."""
    tasks: dict[str, Any] = {}
    totals: dict[str, float] = {}
    while not (stop.is_set() and events.empty()):
        try:
            kind, key, description, total, completed = events.get(timeout=0.2)
        except queue_module.Empty:
            continue
        if kind == "add":
            tasks[key] = progress.add_task(description, total=total, completed=completed)
            totals[key] = total
            if cells is not None:
                cells.start(key)
        elif key in tasks:
            progress.update(tasks[key], completed=completed, description=description)
            if cells is not None:
                cells.step(key, completed, totals[key], description)


def _ignore_interrupts() -> None:
    """A worker's initializer: Ctrl-C reaches the whole process group, and only the parent acts on it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes now (``shutdown`` alone would let running cells finish)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _work(job: CellJob, plan: CellPlan, config: RunConfig, run_dir: Path, threads: int, events: Any) -> pd.DataFrame:
    torch.set_num_threads(threads)
    return job(plan, config, run_dir, QueueProgress(events, plan.tag, plan.tag.rsplit("/", 1)[0]))


def run_cells_in_parallel(
    job: CellJob,
    plans: list[CellPlan],
    config: RunConfig,
    run_dir: Path,
    jobs: int,
    progress: Progress,
    events: CellEvents | None = None,
) -> list[pd.DataFrame]:
    """``job`` for every cell in ``jobs`` spawned processes with the cores shared out; the tables come
    back in the order of ``cells``. A failing cell stops the run with its error (cells not yet started
    are dropped, the ones running finish first); Ctrl-C stops every worker at once."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    order = sorted(range(len(plans)), key=lambda i: -plans[i].cost)
    context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    manager = SyncManager(ctx=context)
    manager.start(_ignore_interrupts)
    try:
        queue = manager.Queue()
        stop = threading.Event()
        relay = threading.Thread(target=_relay, args=(queue, progress, stop, events), daemon=True)
        relay.start()
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_ignore_interrupts)
        try:
            futures: dict[int, Future] = {}
            for i in order:
                futures[i] = pool.submit(_work, job, plans[i], config, run_dir, threads, queue)
                if events is not None:
                    futures[i].add_done_callback(lambda f, tag=plans[i].tag: f.exception() or events.finish(tag))
            wait(futures.values(), return_when=FIRST_EXCEPTION)
            failed = [future for future in futures.values() if future.done() and future.exception()]
            if failed:  # cells not started are dropped; the ones running finish first
                pool.shutdown(wait=True, cancel_futures=True)
                raise failed[0].exception()
            tables = [futures[i].result() for i in range(len(plans))]
        except KeyboardInterrupt:
            _stop_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            stop.set()
            relay.join()
    finally:
        manager.shutdown()
    return tables
