"""DiffProto inference cost and quality against the number of DDIM steps (1, 2, 5, 10, 25, 50).

Loads a trained DiffProto (``best.pt`` of a ``mosxav-bench run`` work folder) or, with no
``--checkpoint``, trains one briefly on the embedded synthetic default; then, on the validation
split at the run resolution, prints ms per frame and mean Dice per step count, the segmenter alone
for reference (the ratio column is ms relative to it), and the step count chosen as default: the
fewest steps within 0.005 Dice of the best.

    python bench/diffproto_steps.py [--checkpoint RUN/work/diffproto/frac0.25/seed0/best.pt]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from mosxav.data.named import resolve_root
from mosxav.harness.config import RunConfig
from mosxav.harness.sources import build_source
from mosxav.training.batches import FrameTensors
from mosxav.training.trainer import TrainConfig, Trainer, mean_dice
from mosxav_diffproto.method import DiffProto

STEPS = (1, 2, 5, 10, 25, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--size", type=int, default=RunConfig().size)
    parser.add_argument("--iterations", type=int, default=150, help="training steps when no checkpoint is given")
    args = parser.parse_args()
    torch.manual_seed(0)
    default = RunConfig()
    data = build_source(default.dataset, resolve_root)
    options = {
        **dataclasses.asdict(default.model),
        **default.method_options.get("diffproto", {}),
        "iterations": args.iterations,
    }
    method = DiffProto(options, data.num_classes)
    val = FrameTensors(data.val, range(len(data.val)), args.size, True)
    if args.checkpoint:
        method.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    else:
        train = FrameTensors(
            data.train, [i for i, r in enumerate(data.records) if r.semantic_path is not None], args.size, True
        )
        config = TrainConfig(
            iterations=args.iterations, lr=0.002, optimizer="adamw", val_every=50, checkpoint_every=args.iterations
        )
        Trainer(method, train, None, val, config, Path("runs/bench_diffproto_steps")).fit()
    method.eval()
    images = torch.stack([val[i]["image"] for i in range(min(16, len(val)))])

    def timed(fn) -> float:
        fn(images[:2])  # warm-up
        start = time.perf_counter()
        fn(images)
        return (time.perf_counter() - start) * 1000 / len(images)

    method.options = dataclasses.replace(method.options, predict_with="segmenter")
    base_ms = timed(method.predict)
    print(f"{'steps':>9} {'ms/frame':>9} {'x segmenter':>12} {'val Dice':>9}")
    print(f"{'segmenter':>9} {base_ms:9.1f} {1.0:12.2f} {mean_dice(method, val, torch.device('cpu')):9.4f}")
    method.options = dataclasses.replace(method.options, predict_with="diffusion")
    results = {}
    for steps in STEPS:
        method.sampler.steps = steps
        ms = timed(method.predict)
        results[steps] = mean_dice(method, val, torch.device("cpu"))
        print(f"{steps:9d} {ms:9.1f} {ms / base_ms:12.2f} {results[steps]:9.4f}")
    best = max(results.values())
    chosen = min(s for s, d in results.items() if d >= best - 0.005)
    print(f"default sample_steps: {chosen} (fewest steps within 0.005 Dice of the best, {best:.4f})")


if __name__ == "__main__":
    main()
