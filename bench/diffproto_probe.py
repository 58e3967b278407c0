"""Probe the trained DiffProto cells of a run folder: the denoiser's copy rate and each prediction head.

For every cell of a DiffProto method (or variant) in ``RUN/submissions/*/.../model``:

1. **Rectification**: each test frame's ground truth at the run size, corrupted by
   ``mosxav.training.label_noise`` at ``--rate`` (seeded per frame: the same wrong label for every cell),
   noised at 0.1, 0.5 and 0.8 x T and denoised once with the image, as pseudo-labels are rectified:
   the share of wrong pixels fixed, the share copied, the share of right pixels broken
   (``mosxav_diffproto.probe``). Written to ``OUT/rectification.csv``.
2. **Heads**: the test split predicted by the segmenter, 1 and ``sample_steps`` DDIM steps and their
   mean, on the same weights, and scored as the run scores (``OUT/heads_per_frame.csv.gz``, methods
   named ``<method>:<head>``, paired by seed and sequence with ``mosxav-bench compare``-style tables).

    python bench/diffproto_probe.py RUN [RUN ...] --out OUT [--rate 0.6]

(several RUNs: the cell folders of a study run one cell per process, ``scripts/study.py``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mosxav.data.files import read_yaml, write_text
from mosxav.data.named import resolve_root
from mosxav.harness.config import RunConfig, parse_config
from mosxav.harness.model_card import CARD_FILE, ModelCard, load_weights
from mosxav.harness.predict import predict_items
from mosxav.harness.sources import build_source
from mosxav.training.batches import resize_pair
from mosxav.training.label_noise import corrupt_mask, frame_rng
from mosxav.training.network_input import network_input
from mosxav_diffproto.method import DiffProto
from mosxav_diffproto.probe import EMPTY, head_names, head_probabilities, rectification_outcome

T_FRACTIONS = (0.1, 0.5, 0.8)


class HeadView:
    """A trained DiffProto seen through one of its heads, as ``predict_items`` calls a method."""

    def __init__(self, method: DiffProto, head: str) -> None:
        self.method, self.head = method, head

    def eval(self) -> HeadView:
        self.method.eval()
        return self

    def to(self, device: torch.device) -> HeadView:
        self.method.to(device)
        return self

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return head_probabilities(self.method, images, self.head)


def cells(run: Path) -> list[tuple[str, int, Path]]:
    """(method, seed, model folder) of every cell with a model card, clean-label cells only."""
    found = []
    for card in sorted((run / "submissions").rglob(f"model/{CARD_FILE}")):
        parts = card.relative_to(run / "submissions").parts
        noise = next(p for p in parts if p.startswith("noise"))
        if float(noise[len("noise") :]) == 0:
            seed = int(next(p for p in parts if p.startswith("seed"))[len("seed") :])
            found.append((parts[0], seed, card.parent))
    return found


def configs(runs: list[Path]) -> list[tuple[Path, RunConfig]]:
    """Each run folder with its config (the folders without a finished run are skipped)."""
    found = []
    for run in runs:
        path = run / "config.yaml"
        if path.is_file() and (run / "submissions").is_dir():
            found.append((run, parse_config(read_yaml(path, "run config"), path)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=0.6, help="label-noise rate of the given labels")
    args = parser.parse_args()
    rectified, heads = [], []
    for name, seed, folder, config in ((*cell, config) for run, config in configs(args.runs) for cell in cells(run)):
        if not issubclass(config.method_class(name), DiffProto):
            continue
        data = build_source(config.dataset, resolve_root)
        card = ModelCard.read(folder / CARD_FILE, read_yaml(folder / CARD_FILE, "model card"))
        method = config.method_class(name)(card.options, card.num_classes)
        load_weights(method, folder / card.weights)
        totals = dict.fromkeys(T_FRACTIONS, EMPTY)
        for k in range(len(data.test)):
            item = data.test[k]
            image, truth = resize_pair(item["image"], item["semantic"], card.size)
            given = corrupt_mask(truth, args.rate, frame_rng(0, f"{item['sequence']}/{item['frame']}"))
            x = torch.from_numpy(network_input(image, card.input))[None, None]
            for fraction in T_FRACTIONS:
                outcome = rectification_outcome(
                    method,
                    x,
                    torch.from_numpy(truth.astype(np.int64))[None],
                    torch.from_numpy(given.astype(np.int64))[None],
                    fraction,
                    seed=k,
                )
                totals[fraction] = totals[fraction] + outcome
        for fraction, outcome in totals.items():
            rectified.append({"method": name, "seed": seed, "t_fraction": fraction, "rate": args.rate, **vars(outcome)})
        for head in head_names(method):
            with tempfile.TemporaryDirectory() as scratch:
                predict_items(
                    HeadView(method, head),
                    data.test,
                    card.size,
                    Path(scratch),
                    torch.device("cpu"),
                    card.predict,
                    input_config=card.input,
                )
                scored = data.score(Path(scratch))
            heads.append(scored.assign(method=f"{name}:{head}", labeled_fraction=0.0, label_noise=0.0, seed=seed))
        print(
            f"{name} seed {seed}: "
            + ", ".join(f"t {f:g}: fixed {o.fixed:.2f} copied {o.copied:.2f}" for f, o in totals.items())
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "rectification.csv", pd.DataFrame(rectified).to_csv(index=False, float_format="%.6f"))
    if heads:
        pd.concat(heads, ignore_index=True).to_csv(
            args.out / "heads_per_frame.csv.gz", index=False, float_format="%.6f"
        )


if __name__ == "__main__":
    main()
