"""Run a committed study cell by cell and keep each cell's raw per-frame results in ``results/<study>/``.

A study longer than a session runs as one process per cell (``mosxav-bench run --shard k/N``), ``--jobs``
at a time, each on one thread; when a cell finishes, its ``per_frame.csv`` is copied, gzipped, to
``results/<study>/shards/<k>.csv.gz`` and a line is added to ``results/<study>/provenance.csv`` (cell,
commit, seconds, machine), so that committing after each cell loses nothing when the session ends. Run it
again to do the cells still missing. ``scripts/results_tables.py`` builds the documentation's tables
from these files.

    python scripts/study.py configs/noise.yaml --study noise --jobs 2 [--deadline 3600]
        [--order diffproto:0.3,diffproto_noproto:0.3,supervised:0] [--methods a,b] [--seeds 0,1,2] [--work runs/]

``--methods`` and ``--seeds`` run only those cells (a study's gate: its positive control first). A shard
is named by its cell's index in the config's matrix: after a study's config gains seeds or methods,
``--renumber`` first gives the committed shards their new numbers (files and CSV rows, matched by cell);
without it a run whose committed shards are not its config's cells stops before it trains. Each
kept cell also adds its training summary (best validation step, the unlabeled share of the loss over
the run and at its end: ``training.json``) as a row of ``results/<study>/training.csv``.

Order: the cells named by ``--order`` (method:noise, in that order, seeds interleaved: every first seed
before any second), then the rest seed by seed in the matrix's order.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mosxav.harness.cells import Cell  # noqa: E402
from mosxav.harness.config import load_config  # noqa: E402
from mosxav.harness.machine import machine_facts  # noqa: E402
from mosxav.harness.run import matrix  # noqa: E402


def commit() -> str:
    """The commit of the code that runs (with ``+dirty`` when a tracked file outside ``results/`` has
    changes: the results a study is writing are not the code that makes them)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return head + ("+dirty" if dirty.stdout.strip() else "")


def priority(cells: list[Cell], order: list[tuple[str, float]]) -> list[int]:
    """Cell indices: those of ``order`` first (by its position, then seed, then fold), then seed-major."""
    seeds = sorted({c.seed for c in cells})

    def key(k: int) -> tuple:
        cell = cells[k]
        named = (cell.method, round(cell.label_noise, 6))
        wanted = [(m, round(n, 6)) for m, n in order]
        rank = wanted.index(named) if named in wanted else len(wanted)
        return (rank, seeds.index(cell.seed), k)

    return sorted(range(len(cells)), key=key)


def run_cell(config: Path, index: int, count: int, work: Path) -> tuple[int, float]:
    """One cell in its own process on one thread; returns (exit code, seconds)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = work / f"{index:04d}"
    args = [sys.executable, "-m", "mosxav_leaderboard.command_line", "run", "--config", str(config)]
    args += ["--out", str(out), "--shard", f"{index}/{count}", "--jobs", "1"]
    started = time.monotonic()
    with open(work / f"{index:04d}.log", "w") as log:
        code = subprocess.run(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    return code, time.monotonic() - started


def keep(study: Path, work: Path, index: int, cell: Cell, seconds: float, version: str) -> None:
    """Copy the cell's per-frame table into the study folder and record where it came from."""
    shards = study / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    with (
        open(work / f"{index:04d}" / "per_frame.csv", "rb") as source,
        gzip.open(shards / f"{index:04d}.csv.gz", "wb", 9) as target,
    ):
        shutil.copyfileobj(source, target)
    facts = {**machine_facts(), "threads": 1}  # each cell runs in its own one-thread process
    append_row(
        study / "provenance.csv",
        {"shard": index, "cell": cell.tag, "commit": version, "seconds": f"{seconds:.0f}", **facts},
    )
    summary = work / f"{index:04d}" / "work" / cell.tag / "training.json"
    if summary.is_file():
        append_row(study / "training.csv", {"shard": index, "cell": cell.tag, **json.loads(summary.read_text())})


def committed_cells(study: Path) -> dict[int, str]:
    """The committed shards' cells by shard index, as ``provenance.csv`` recorded them when they were kept."""
    path = study / "provenance.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    present = {int(f.name.split(".")[0]) for f in (study / "shards").glob("*.csv.gz")}
    return {int(row["shard"]): row["cell"] for row in rows if int(row["shard"]) in present}


def misplaced(cells: list[Cell], found: dict[int, str]) -> list[str]:
    """Committed shards whose index is now another cell's: a shard is named by its cell's index in the
    config's matrix, which a config with other seeds or methods renumbers. Unchecked, the run would skip
    the cells whose numbers the old shards hold and never train them."""
    out = []
    for k, tag in sorted(found.items()):
        now = cells[k].tag if k < len(cells) else "no cell"
        if now != tag:
            out.append(f"{k:04d} holds {tag}, the config's {k:04d} is {now}")
    return out


def renumber(study: Path, cells: list[Cell]) -> int:
    """Give every committed shard its cell's index in ``cells`` (the shard files, and the ``shard`` column
    of ``provenance.csv`` and ``training.csv``, matched by cell); returns how many moved. Refuses, changing
    nothing, when a committed cell is not in the matrix any more."""
    found = committed_cells(study)
    index = {cell.tag: k for k, cell in enumerate(cells)}
    gone = sorted(tag for tag in found.values() if tag not in index)
    if gone:
        raise SystemExit(f"{study / 'provenance.csv'}: committed cells the config no longer has: {', '.join(gone)}")
    moves = {old: index[tag] for old, tag in found.items() if index[tag] != old}
    shards = study / "shards"
    twice = len(set(found.values())) < len(found)
    taken = [new for new in moves.values() if new not in moves and (shards / f"{new:04d}.csv.gz").exists()]
    if twice or taken:
        raise SystemExit(f"{shards}: two shards would take one number; nothing was renumbered")
    for old in moves:
        (shards / f"{old:04d}.csv.gz").rename(shards / f"{old:04d}.csv.gz.renumbering")
    for old, new in moves.items():
        (shards / f"{old:04d}.csv.gz.renumbering").rename(shards / f"{new:04d}.csv.gz")
    for name in ("provenance.csv", "training.csv"):
        path = study / name
        if not path.exists():
            continue
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            header, rows = reader.fieldnames or [], list(reader)
        for row in rows:
            if row.get("cell") in index:
                row["shard"] = str(index[row["cell"]])
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
    return len(moves)


def append_row(path: Path, row: dict) -> None:
    """Add ``row`` to a CSV file (its header written first); an older file with fewer columns keeps its
    header, and the row keeps those columns only."""
    header = list(row)
    if path.exists():
        with open(path, newline="") as handle:
            header = next(csv.reader(handle))
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({key: "" if row.get(key) is None else row.get(key, "") for key in header})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--study", required=True, help="folder name under results/")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=None, help="start no cell after this many seconds")
    parser.add_argument("--order", default="", help="method:noise,... to run first")
    parser.add_argument("--methods", default="", help="run only these methods (comma-separated)")
    parser.add_argument("--seeds", default="", help="run only these seeds (comma-separated)")
    parser.add_argument("--work", type=Path, default=ROOT.parent / "runs", help="where the cells' run folders go")
    parser.add_argument(
        "--renumber", action="store_true", help="first give the committed shards their cells' numbers in this config"
    )
    args = parser.parse_args()
    config = load_config(args.config)
    cells = matrix(config)
    study = ROOT / "results" / args.study
    study.mkdir(parents=True, exist_ok=True)
    if args.renumber:
        print(f"{args.study}: {renumber(study, cells)} committed shards renumbered", flush=True)
    wrong = misplaced(cells, committed_cells(study))
    if wrong:
        raise SystemExit(
            f"{study / 'shards'}: {len(wrong)} committed shards are not this config's cells ({wrong[0]}); "
            "run with --renumber after changing a study's seeds or methods"
        )
    shutil.copyfile(args.config, study / "config.yaml")
    work = args.work / args.study
    work.mkdir(parents=True, exist_ok=True)
    order = [(m, float(n)) for m, n in (part.split(":") for part in args.order.split(",") if part)]
    methods = {m for m in args.methods.split(",") if m}
    seeds = {int(x) for x in args.seeds.split(",") if x}
    todo = [
        k
        for k in priority(cells, order)
        if not (study / "shards" / f"{k:04d}.csv.gz").exists()
        and (not methods or cells[k].method in methods)
        and (not seeds or cells[k].seed in seeds)
    ]
    version = commit()
    started = time.monotonic()
    print(f"{args.study}: {len(todo)} of {len(cells)} cells to run, {args.jobs} at a time, code {version}", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        running: dict[Future, int] = {}
        while todo or running:
            while todo and len(running) < args.jobs:
                if args.deadline is not None and time.monotonic() - started > args.deadline:
                    todo.clear()
                    break
                k = todo.pop(0)
                print(f"start {k:04d} {cells[k].tag}", flush=True)
                running[pool.submit(run_cell, args.config, k, len(cells), work)] = k
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                k = running.pop(future)
                code, seconds = future.result()
                if code == 0:
                    keep(study, work, k, cells[k], seconds, version)
                print(
                    f"{'done' if code == 0 else f'FAILED ({code})'} {k:04d} {cells[k].tag} {seconds:.0f} s", flush=True
                )


if __name__ == "__main__":
    main()
