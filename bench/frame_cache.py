"""Benchmark: training steps with prepared frames kept in memory (``FrameTensors``' cache) against the
same steps preparing every frame on each access (``cache_bytes=0``, the trainer's behaviour before the
cache), in one run, interleaved block by block so that a machine changing speed weighs on both. The
cached trainer's frames are prepared before the clock starts: the steady state of a long training.

The data are the 40 real XCA angiograms (``../shared/data/xca-coronary-cimat-80``) at 256 px, as
``configs/xca.yaml`` trains on them (local contrast normalization on, then off), or a synthetic MOSXAV
split at 128 px (the quick default) when the shared folder is absent. The weights of both trainers
must end equal: the cache changes no value.

    python bench/frame_cache.py [--steps 20] [--blocks 3] [--threads 2] [--synthetic]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mosxav.data.pairs import FramePairs
from mosxav.training.batches import FrameTensors
from mosxav.training.network_input import InputConfig
from mosxav.training.protocol import get_method
from mosxav.training.trainer import TrainConfig, Trainer

XCA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xca-coronary-cimat-80" / "training"


def synthetic_frames(root: Path):
    """A small synthetic MOSXAV train split, as the quick default reads it."""
    from mosxav.data.dataset import MOSXAV
    from mosxav.data.synth import SynthConfig, generate_dataset

    generate_dataset(root, SynthConfig(sequences=5, frames=20, size=512, seed=0))
    return MOSXAV(root, split="train", annotated_only=True)


def seconds_per_step(
    items, size: int, input_config: InputConfig, cache_bytes: int, steps: int, out: Path
) -> tuple[float, list[torch.Tensor]]:
    """Seconds per training step of the supervised U-Net, and its weights after ``steps`` steps."""
    torch.manual_seed(0)
    method = get_method("supervised")({"width": 16, "depth": 4}, 2 if isinstance(items, FramePairs) else 6)
    labeled = FrameTensors(items, range(len(items)), size, True, input_config=input_config, cache_bytes=cache_bytes)
    config = TrainConfig(iterations=steps, val_every=10**9, checkpoint_every=10**9, log_every=10**9)
    trainer = Trainer(method, labeled, None, None, config, out)
    if cache_bytes:
        for i in range(len(labeled)):
            labeled[i]  # a long training spends all but its first epoch with the frames prepared
    start = time.perf_counter()
    trainer.fit()
    elapsed = time.perf_counter() - start
    return elapsed / steps, [p.detach().clone() for p in method.parameters()]


def preparation_ms(items, size: int, input_config: InputConfig) -> float:
    """Milliseconds to decode, resize and normalize one frame (what the cache saves per access)."""
    tensors = FrameTensors(items, range(len(items)), size, True, input_config=input_config, cache_bytes=0)
    start = time.perf_counter()
    for i in range(len(tensors)):
        tensors[i]
    return (time.perf_counter() - start) / len(tensors) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--synthetic", action="store_true", help="the synthetic split even where XCA is present")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if XCA.is_dir() and not args.synthetic:
            items, size, name = FramePairs(XCA), 256, "XCA, 40 real angiograms, 256 px"
            inputs = [InputConfig(contrast="local"), InputConfig()]
        else:
            items, size, name = synthetic_frames(Path(tmp) / "synth"), 128, "synthetic MOSXAV, 128 px"
            inputs = [InputConfig()]
        for input_config in inputs:
            totals = {"cached": 0.0, "uncached": 0.0}
            for block in range(args.blocks):
                for label, budget in (("cached", 1 << 30), ("uncached", 0)):
                    out = Path(tmp) / f"{label}{block}{input_config.contrast}"
                    step, weights = seconds_per_step(items, size, input_config, budget, args.steps, out)
                    totals[label] += step / args.blocks
                    if label == "cached":
                        reference = weights
                    else:
                        assert all(torch.equal(a, b) for a, b in zip(reference, weights, strict=True))
            print(
                f"{name}, input {input_config.contrast}, {args.threads} threads, batch 4: "
                f"cached {totals['cached']:.3f} s/step | prepared on every access {totals['uncached']:.3f} s/step | "
                f"speed-up {totals['uncached'] / totals['cached']:.2f}x (weights equal; preparing one frame "
                f"{preparation_ms(items, size, input_config):.1f} ms)"
            )


if __name__ == "__main__":
    main()
