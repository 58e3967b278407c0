"""Run every cell of one or more run configs as its own shard, many at a time, then merge each config.

For a machine with more cores (and a GPU) than one training process uses: each cell of each config is
``mosxav-bench run --config C --shard k/N`` in its own process (one CPU thread each), ``--parallel`` of
them at a time, in the order seed, then config, then matrix position (so a deadline leaves every
config with its first seeds done rather than one config complete); configs after ``--then`` come after
all of those. No shard is started after ``--deadline`` seconds and running ones are stopped at
``--deadline + --grace``; each config's finished shards are then merged
(``mosxav-bench merge``) into ``OUT/<config stem>/``, the cells never scored named in its
``results.md``. A log line per shard goes to ``OUT/shards.log``.

Usage: ``python scripts/array_run.py --out runs/study --parallel 12 configs/a.yaml configs/b.yaml
[--then configs/c.yaml] [--deadline 480] [--scale 0.05]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mosxav.harness.config import load_config
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", type=Path, nargs="+")
    parser.add_argument("--then", type=Path, nargs="*", default=[], help="configs to start after all the others")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no shard starts")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds after the deadline before shards stop")
    parser.add_argument("--scale", type=float, default=None, help="passed to every run (a smoke test: 0.05)")
    args = parser.parse_args()
    jobs = plan(args.configs, args.then, args.scale)
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "shards.log").open("a", encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    pending = list(jobs)
    running: dict[subprocess.Popen, tuple[Job, float]] = {}
    done = failed = 0
    while pending or running:
        now = time.monotonic() - start
        while pending and len(running) < args.parallel and now < args.deadline:
            job = pending.pop(0)
            job.folder(args.out).mkdir(parents=True, exist_ok=True)
            output = (job.folder(args.out) / "output.txt").open("w", encoding="utf-8")
            process = subprocess.Popen(command(job, args.out, args.scale), stdout=output, stderr=output, env=env)
            running[process] = (job, now)
        for process, (job, began) in list(running.items()):
            stopped = now > args.deadline + args.grace
            if stopped and process.poll() is None:
                process.kill()
            if process.poll() is None:
                continue
            del running[process]
            ok = process.returncode == 0
            done += ok
            failed += not ok
            status = "ok" if ok else ("stopped at the deadline" if stopped else f"exit {process.returncode}")
            log.write(f"{now:7.1f}s {job.config.stem} shard {job.index}/{job.count}: {status} ({now - began:.1f}s)\n")
            log.flush()
        if now >= args.deadline and not running:
            break
        time.sleep(0.5)
    print(f"{done} shards ok, {failed} failed or stopped, {len(pending)} never started", flush=True)
    for path in dict.fromkeys(job.config for job in jobs):
        finished = sorted(
            folder for folder in (args.out / path.stem / "shards").glob("*") if (folder / "per_frame.csv").is_file()
        )
        if not finished:
            print(f"{path.stem}: no shard finished", flush=True)
            continue
        merge = [sys.executable, "-m", "mosxav_leaderboard.command_line", "merge", *map(str, finished)]
        subprocess.run([*merge, "--out", str(args.out / path.stem)], check=False)
    return 0 if failed == 0 and not pending else 1


if __name__ == "__main__":
    sys.exit(main())
