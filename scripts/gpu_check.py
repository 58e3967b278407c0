"""One short check of ``configs/paper.yaml`` on a CUDA machine (run by ``scripts/gpu_check.sh``).

1. Every trained method of the paper config trains ``--steps`` steps at the paper's resolution, width,
   batch and method options, with bfloat16 autocast and ``torch.compile`` as the config asks, on a small
   synthetic MOSXAV generated at that resolution; then predicts two test frames. Printed per method:
   compile warm-up, frames/s after it, the batch assembly's milliseconds and share of a step, peak GPU
   memory, the last loss. Any NaN/inf loss, NaN prediction or error fails the check.
2. A two-step DDP run of the harness (``torchrun`` on every visible GPU, NCCL) for two methods.

Usage: ``python scripts/gpu_check.py [--steps 200] [--out DIR]``; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from mosxav import MOSXAV
from mosxav.data.synth import SynthConfig, generate_dataset
from mosxav.harness.config import load_config
from mosxav.harness.report import markdown_table
from mosxav.harness.run import Cell, method_options
from mosxav.training.batches import FrameTensors
from mosxav.training.protocol import get_method
from mosxav.training.trainer import Trainer

PAPER = Path(__file__).resolve().parent.parent / "configs" / "paper.yaml"


def check_method(name: str, config, root: Path, steps: int, work: Path, device: str = "cuda") -> dict:
    """Train one method for ``steps`` steps (on the GPU; the tests use the CPU); returns its figures and
    raises on NaN. ``batch_ms`` times the batch assembly alone (collate, crop, augmentation, copy to the
    device): on a GPU it is what a fast step still waits for on the CPU."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    size = config.effective_size()
    train = dataclasses.replace(
        config.effective_train(), iterations=steps, val_every=steps, checkpoint_every=steps, log_every=1
    )
    options = method_options(dataclasses.replace(config, train=train), Cell(name, 0.25, 0.0, 0))
    torch.manual_seed(0)
    method = get_method(name)(options, 6)
    items = MOSXAV(root, "train", annotated_only=True)
    half = len(items) // 2
    labeled = FrameTensors(items, range(half), size, True)
    unlabeled = FrameTensors(items, range(half, len(items)), size, False)
    val = FrameTensors(MOSXAV(root, "val", annotated_only=True), range(2), size, True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(method, labeled, unlabeled, val, train, work / name, device=device)
    start = time.perf_counter()
    trainer.fit()
    _synchronize(device)
    total = time.perf_counter() - start
    batch_ms = _batch_assembly_ms(trainer, device)
    records = [json.loads(line) for line in (work / name / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    if not losses or not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f"{name}: non-finite loss in {losses[-5:]}")
    rates = [r["frames_per_s"] for r in records if "frames_per_s" in r]
    steady = rates[len(rates) // 2 :]  # the second half: compile and allocator warm-up are over
    frames_per_s = sum(steady) / len(steady)
    with torch.no_grad():
        probs = method.predict(torch.stack([val[i]["image"] for i in range(2)]).to(device))
    if not torch.isfinite(probs).all():
        raise FloatingPointError(f"{name}: non-finite prediction")
    return {
        "method": name,
        "steps": steps,
        "seconds": round(total, 1),
        "first_step_s": round(train.batch_size / rates[0], 1),  # allocation, autotuning and compilation
        "frames_per_s": round(frames_per_s, 1),
        "batch_ms": round(batch_ms, 1),
        "batch_share": round(batch_ms / 1000 / (train.batch_size / frames_per_s), 2),
        "peak_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else float("nan"),
        "last_loss": round(losses[-1], 4),
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch_assembly_ms(trainer: Trainer, device: torch.device, repeats: int = 20) -> float:
    """Mean milliseconds of ``Trainer._batches`` alone (frames already prepared and cached by the run)."""
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        trainer._batches()
    _synchronize(device)
    return (time.perf_counter() - start) / repeats * 1000


def results_table(rows: list[dict]) -> str:
    """The per-method figures as the Markdown table the README keeps."""
    headers = [
        "method",
        "steps",
        "s total",
        "first step s",
        "frames/s",
        "batch ms (share of a step)",
        "peak GiB",
        "last loss",
    ]
    cells = [
        [
            r["method"],
            r["steps"],
            r["seconds"],
            r["first_step_s"],
            r["frames_per_s"],
            f"{r['batch_ms']} ({r['batch_share']:.0%})",
            r["peak_GiB"],
            r["last_loss"],
        ]
        for r in rows
    ]
    return markdown_table(headers, cells)


def check_ddp(root: Path, work: Path, gpus: int) -> str:
    """Two DDP steps of the harness on every visible GPU (NCCL); returns the command's tail."""
    run_config = {
        "dataset": {"root": str(root)},
        "size": 512,
        "methods": ["supervised", "diffproto"],
        "labeled_fractions": [0.5],
        "leaderboard": False,
        "overlays": 1,
        "model": {"width": 32, "depth": 4},
        "train": {
            "iterations": 2,
            "val_every": 2,
            "checkpoint_every": 2,
            "log_every": 1,
            "amp": True,
            "optimizer": "sgd",
            "lr": 0.01,
        },
        "method_options": {"diffproto": {"denoiser_width": 32, "sample_steps": 2}},
    }
    path = work / "ddp.yaml"
    path.write_text(yaml.safe_dump(run_config))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        "-m",
        "mosxav_leaderboard.command_line",
        "run",
        "--config",
        str(path),
        "--out",
        str(work / "ddp"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"DDP run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout[-1500:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--methods", nargs="+", default=None, help="default: every trained method of the paper config")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--ddp-only", action="store_true", help="only the two-step DDP run of the harness")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: this check is for a GPU machine", file=sys.stderr)
        return 2
    config = load_config(PAPER)
    names = [] if args.ddp_only else args.methods or [m for m in config.methods if get_method(m).needs_training]
    gpus = torch.cuda.device_count()
    print(
        f"torch {torch.__version__}, {gpus} x {torch.cuda.get_device_name(0)}; paper config: "
        f"{config.effective_size()} px, width {config.model.width}, batch {config.train.batch_size}+"
        f"{config.train.unlabeled_batch_size}, amp={config.train.amp}, compile={config.train.compile}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    root = generate_dataset(
        work / "synth", SynthConfig(sequences=4, frames=11, size=config.effective_size(), seed=0, test_sequences=1)
    )
    rows, failures = [], []
    for name in names:
        try:
            row = check_method(name, config, root, args.steps, work)
        except Exception as exc:  # report every method, then fail
            failures.append(f"{name}: {exc.__class__.__name__}: {exc}")
            print(f"FAILED {failures[-1]}", flush=True)
            continue
        rows.append(row)
        print(json.dumps(row), flush=True)
    try:
        print(check_ddp(root, work, gpus), flush=True)
        ddp = f"two DDP steps on {gpus} GPU(s): ok"
    except Exception as exc:
        failures.append(f"DDP: {exc}")
        ddp = f"two DDP steps on {gpus} GPU(s): FAILED"
    table = results_table(rows)
    print(table + ddp)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps({"rows": rows, "ddp": ddp, "failures": failures}, indent=2))
        (args.out / "gpu_check.md").write_text(table + "\n" + ddp + "\n")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(tempfile.gettempdir()) / "mosxav_inductor"))
    sys.exit(main())
