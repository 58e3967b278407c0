"""Training throughput of every registered method: labeled frames per second of one optimiser step
(forward + backward + update, labeled and unlabeled batches as the harness feeds them), at the quick
and the paper resolutions, printed beside the supervised U-Net as a ratio (same run, same machine),
in the trainer's layout (``train.channels_last``, NHWC) and, as the peer, in the default NCHW layout.

    python bench/train_throughput.py [--resolutions quick paper] [--steps 3] [--methods supervised cps ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from mosxav.harness.config import RunConfig, load_config
from mosxav.training.protocol import available_methods, get_method
from mosxav.training.trainer import TrainConfig, in_layout, make_optimizer


def settings_of(config: RunConfig) -> dict:
    return {
        "size": config.size,
        "model": dataclasses.asdict(config.model),
        "batch": config.train.batch_size,
        "options": config.method_options,
    }


def paper_settings() -> dict:
    return settings_of(load_config(Path(__file__).resolve().parent.parent / "configs" / "paper.yaml"))


def frames_per_second(
    name: str, size: int, model: dict, batch: int, options: dict, steps: int, channels_last: bool = True
) -> float:
    torch.manual_seed(0)
    cls = get_method(name)
    method = cls({**model, **options.get(name, {}), "iterations": 1000}, 6)
    if not cls.needs_training:
        return float("nan")
    if channels_last:
        method.to(memory_format=torch.channels_last)  # as the trainer does, with the images too
    optimizer = make_optimizer(method.trainable_parameters(), TrainConfig(optimizer="adamw", lr=1e-3))
    images = in_layout(torch.rand(batch, 1, size, size), channels_last)
    labeled = {"image": images, "mask": (images[:, 0] * 6).long().clamp(max=5)}
    unlabeled = {k: in_layout(torch.rand(batch, 1, size, size), channels_last) for k in ("weak", "strong")}
    method.train()
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()  # the first step warms up allocators and kernels
        loss, _ = method(labeled, unlabeled if cls.uses_unlabeled else None, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        method.after_step(step)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", nargs="+", default=["quick", "paper"], choices=["quick", "paper"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=None)
    args = parser.parse_args()
    settings = {"quick": settings_of(RunConfig()), "paper": paper_settings()}
    methods = args.methods or [m for m in sorted(available_methods()) if get_method(m).needs_training]
    if "supervised" not in methods:
        methods = ["supervised", *methods]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    for resolution in args.resolutions:
        s = settings[resolution]
        print(
            f"\n{resolution}: {s['size']}x{s['size']}, U-Net width {s['model']['width']} depth {s['model']['depth']}, "
            f"batch {s['batch']} labeled (+{s['batch']} unlabeled)"
        )
        print(f"{'method':>20} {'frames/s':>9} {'x supervised':>13} {'NCHW frames/s':>14} {'NHWC / NCHW':>12}")
        args_of = (s["size"], s["model"], s["batch"], s["options"], args.steps)
        base = frames_per_second("supervised", *args_of)
        for name in methods:
            fps = base if name == "supervised" else frames_per_second(name, *args_of)
            nchw = frames_per_second(name, *args_of, channels_last=False)
            print(f"{name:>20} {fps:9.2f} {fps / base:13.2f} {nchw:14.2f} {fps / nchw:12.2f}", flush=True)


if __name__ == "__main__":
    main()
