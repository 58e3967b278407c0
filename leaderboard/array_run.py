"""Run every cell of one or more run configs as its own shard, many at a time, then merge each config.

For a machine with more cores (and a GPU) than one training process uses: each cell of each config is
``mosxav-bench run --config C --shard k/N`` in its own process (one CPU thread each), ``--parallel`` of
them at a time, in the order seed, then config, then matrix position (so a deadline leaves every
config with its first seeds done rather than one config complete); configs after ``--then`` come after
all of those. No shard is started after ``--deadline`` seconds and running ones are stopped at
``--deadline + --grace``; each config's finished shards are then merged
(``mosxav-bench merge``) into ``OUT/<config stem>/``, the cells never scored named in its
``results.md``. A log line per shard goes to ``OUT/shards.log``.

Command: ``mosxav-bench array-run configs/a.yaml configs/b.yaml --out runs/study --parallel 12
[--then configs/c.yaml] [--deadline 480] [--scale 0.05]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mosxav.harness.config import load_config
from mosxav.harness.merge import merge_runs
from mosxav.harness.run import matrix


@dataclass(frozen=True)
class Job:
    config: Path
    index: int
    count: int
    order: tuple[int, int, int, int]

    def folder(self, out: Path) -> Path:
        return out / self.config.stem / "shards" / f"{self.index:04d}"


def plan(first: list[Path], then: list[Path], scale: float | None) -> list[Job]:
    """Every cell of every config as a job, in the order described above."""
    jobs = []
    for group, configs in enumerate((first, then)):
        for k, path in enumerate(configs):
            config = load_config(path, scale=scale)
            cells = matrix(config)
            seed_rank = {seed: r for r, seed in enumerate(config.seeds)}
            for i, cell in enumerate(cells):
                jobs.append(Job(path, i, len(cells), (group, seed_rank.get(cell.seed, 0), k, i)))
    return sorted(jobs, key=lambda job: job.order)


def command(job: Job, out: Path, scale: float | None) -> list[str]:
    args = [sys.executable, "-m", "mosxav_leaderboard.command_line", "run", "--config", str(job.config)]
    args += ["--out", str(job.folder(out)), "--shard", f"{job.index}/{job.count}"]
    return args + (["--scale", str(scale)] if scale is not None else [])


def run_array(
    configs: list[Path],
    out: Path,
    *,
    then: list[Path] = (),
    parallel: int = 1,
    deadline: float = float("inf"),
    grace: float = 60.0,
    scale: float | None = None,
) -> tuple[int, int, int]:
    """Run every cell as its own shard, ``parallel`` at a time, then merge each config's shards.

    Returns:
        the shards that finished, that failed or were stopped, and that never started.
    """
    then = list(then)
    jobs = plan(configs, then, scale)
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "shards.log").open("a", encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    pending = list(jobs)
    running: dict[subprocess.Popen, tuple[Job, float, IO[str]]] = {}
    done = failed = 0
    while pending or running:
        now = time.monotonic() - start
        while pending and len(running) < parallel and now < deadline:
            job = pending.pop(0)
            job.folder(out).mkdir(parents=True, exist_ok=True)
            output = (job.folder(out) / "output.txt").open("w", encoding="utf-8")
            process = subprocess.Popen(command(job, out, scale), stdout=output, stderr=output, env=env)
            running[process] = (job, now, output)
        for process, (job, began, output) in list(running.items()):
            stopped = now > deadline + grace
            if stopped and process.poll() is None:
                process.kill()
            if process.poll() is None:
                continue
            del running[process]
            output.close()
            ok = process.returncode == 0
            done += ok
            failed += not ok
            status = "ok" if ok else ("stopped at the deadline" if stopped else f"exit {process.returncode}")
            log.write(f"{now:7.1f}s {job.config.stem} shard {job.index}/{job.count}: {status} ({now - began:.1f}s)\n")
            log.flush()
        if now >= deadline and not running:
            break
        time.sleep(0.5)
    log.close()
    for path in dict.fromkeys(job.config for job in jobs):
        finished = sorted(
            folder for folder in (out / path.stem / "shards").glob("*") if (folder / "per_frame.csv").is_file()
        )
        if not finished:
            continue
        merge_runs(finished, out / path.stem)
    return done, failed, len(pending)
