"""Scoring is independent per sequence: one helper spreads sequences over worker processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

Job = TypeVar("Job")


def default_workers(jobs: int) -> int:
    """One process per core, never more than there are sequences."""
    return max(1, min(jobs, os.cpu_count() or 1))


def map_sequences(score: Callable[[Job], Any], jobs: Sequence[Job], workers: int | None = None) -> Iterator[Any]:
    """``score(job)`` for every job, in order; in ``workers`` processes (default: the cores) when > 1."""
    workers = default_workers(len(jobs)) if workers is None else workers
    if workers <= 1 or len(jobs) <= 1:
        yield from map(score, jobs)
        return
    with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
        yield from pool.map(score, jobs)
