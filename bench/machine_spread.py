"""Same seed, another machine: how far one cell's scores move with what differs between machines.

The same cell (the default's `supervised` at seed 0 unless told otherwise) is trained and scored in
fresh processes under settings that differ between machines: the same settings twice (is a run
bit-for-bit repeatable here?), another thread count, and older vector instructions for oneDNN's and
ATen's kernels (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``: what a CPU without AVX2, or with another
ISA, dispatches to). Each variant's per-frame scores go to ``OUT/<variant>.csv.gz`` with a
``provenance.csv`` line (the machine facts); ``scripts/results_tables.py`` makes the table of
docs/benchmarks.md from them.

    python bench/machine_spread.py --out results/machine-spread [--config CONFIG] [--method supervised]
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
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: variant -> (environment changes, threads)
VARIANTS: dict[str, tuple[dict[str, str], int]] = {
    "reference": ({}, 1),
    "reference_again": ({}, 1),
    "two_threads": ({}, 2),
    "sse41": ({"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"}, 1),
}


def run_variant(name: str, config: Path, method: str, out: Path, scratch: Path) -> None:
    changes, threads = VARIANTS[name]
    env = {**os.environ, **changes, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    run_dir = scratch / name
    spec = scratch / f"{name}.yaml"
    settings = yaml.safe_load(config.read_text(encoding="utf-8")) | {
        "methods": [method],
        "seeds": [0],
        "overlays": 0,
        "leaderboard": False,
    }
    spec.write_text(yaml.safe_dump(settings), encoding="utf-8")
    started = time.monotonic()
    command = [sys.executable, "-m", "mosxav_leaderboard.command_line", "run", "--config", str(spec)]
    subprocess.run([*command, "--out", str(run_dir), "--jobs", "1"], env=env, check=True, cwd=ROOT)
    seconds = time.monotonic() - started
    with open(run_dir / "per_frame.csv", "rb") as source, gzip.open(out / f"{name}.csv.gz", "wb", 9) as target:
        shutil.copyfileobj(source, target)
    facts = json.loads((run_dir / "machine.json").read_text(encoding="utf-8"))
    row = {
        "variant": name,
        "seconds": f"{seconds:.0f}",
        **facts,
        "changes": " ".join(f"{k}={v}" for k, v in changes.items()),
    }
    path = out / "provenance.csv"
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.yaml")
    parser.add_argument("--method", default="supervised")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="machine-spread-") as scratch:
        for name in args.variants:
            print(f"variant {name}", flush=True)
            run_variant(name, args.config, args.method, args.out, Path(scratch))


if __name__ == "__main__":
    main()
