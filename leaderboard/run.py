"""``mosxav-bench run``: methods x labeled fractions x seeds, trained and scored the same way.

Writes a run folder a person can read: ``config.yaml`` (resolved), ``per_frame.csv``,
``summary.csv``, ``results.md`` (mean ± std over seeds), ``dice_by_structure.png``,
``dice_vs_fraction.png`` and prediction overlays for a few test frames.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml

from mosxav.constants import CLASS_NAMES
from mosxav.dataset import MOSXAV
from mosxav.errors import DataError
from mosxav.evaluate import evaluate_semantic
from mosxav.io import read_yaml, write_semantic_mask, write_text
from mosxav.metrics import summarize
from mosxav.protocol import get_method
from mosxav.splits import make_partition
from mosxav.trainer import TrainConfig, Trainer, progress_bar
from mosxav.training_data import FrameTensors, resize_pair
from mosxav.visualize import contact_sheet

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": {"name": "mosxav-synthetic"},
    "size": 64,
    "methods": ["supervised", "mean_teacher", "cps"],
    "labeled_fractions": [0.25],
    "seeds": [0],
    "train": {"iterations": 200, "batch_size": 4, "unlabeled_batch_size": 4, "lr": 0.01, "checkpoint_every": 100, "val_every": 50},
    "model": {"width": 16, "depth": 3},
    "overlays": 6,
}


def load_config(path: str | Path | None) -> dict[str, Any]:
    """The default config, updated (one level deep) by a YAML file read with ``yaml.safe_load``."""
    config = copy.deepcopy(DEFAULT_CONFIG)
    if path is None:
        return config
    path = Path(path)
    user = read_yaml(path, "config file") or {}
    if not isinstance(user, dict):
        raise DataError(path, "a run config must be a mapping")
    unknown = sorted(set(user) - set(config))
    if unknown:
        raise DataError(path, f"unknown keys {unknown}; known: {sorted(config)}")
    for key, value in user.items():
        config[key] = {**config[key], **value} if isinstance(config[key], dict) and isinstance(value, dict) else value
    return config


def dataset_root(config: dict[str, Any]) -> Path:
    from mosxav.hf import resolve_root

    spec = config["dataset"]
    return Path(spec["root"]) if "root" in spec else resolve_root(spec.get("name", "mosxav-synthetic"))


@torch.no_grad()
def predict_split(method, data: MOSXAV, size: int, out_dir: Path) -> None:
    """Predict every annotated test frame at the run size, upsample probabilities, write class PNGs."""
    for index in range(len(data)):
        item = data[index]
        image, _ = resize_pair(item["image"], None, size)
        x = torch.from_numpy(image.astype(np.float32) / 255.0)[None, None]
        probs = method.predict(x)
        probs = F.interpolate(probs, size=item["image"].shape, mode="bilinear", align_corners=False)
        write_semantic_mask(out_dir / item["sequence"] / f"{item['frame']}.png", probs.argmax(1)[0].numpy().astype(np.uint8))


def run_one(method_name: str, fraction: float, seed: int, root: Path, config: dict[str, Any], run_dir: Path, progress) -> Path:
    size = int(config["size"])
    train = MOSXAV(root, "train")
    partition = make_partition(train.samples, fraction=fraction, seed=seed)
    tag = f"{method_name}/frac{fraction:g}/seed{seed}"
    work = run_dir / "work" / tag
    partition.to_yaml(work / "partition.yaml")
    labeled_ids = partition.labeled_set()
    labeled_idx = [i for i, r in enumerate(train.samples) if f"{r.sequence}/{r.stem}" in labeled_ids]
    unlabeled_idx = [i for i, r in enumerate(train.samples) if f"{r.sequence}/{r.stem}" not in labeled_ids]
    val = MOSXAV(root, "val", annotated_only=True)
    torch.manual_seed(seed)
    method = get_method(method_name)({**config["model"], "iterations": config["train"]["iterations"]}, len(CLASS_NAMES))
    trainer = Trainer(method, FrameTensors(train, labeled_idx, size, True), FrameTensors(train, unlabeled_idx, size, False),
                      FrameTensors(val, range(len(val)), size, True), TrainConfig(seed=seed, **config["train"]), work, progress=progress)
    trainer.fit()
    pred_dir = run_dir / "predictions" / tag
    predict_split(method, MOSXAV(root, "test", annotated_only=True), size, pred_dir)
    return pred_dir


def write_report(frames: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Summary CSV, Markdown table (mean ± std over seeds) and plots from the per-frame table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = summarize(frames, by=["method", "labeled_fraction", "seed"])
    write_text(run_dir / "summary.csv", per_seed.to_csv(index=False, float_format="%.6f"))
    agg = per_seed.groupby(["method", "labeled_fraction", "class_id", "class"])[["dice", "iou", "hd95", "assd", "nsd"]].agg(["mean", "std"])
    agg.columns = [f"{metric}_{stat}" for metric, stat in agg.columns]
    agg = agg.fillna({c: 0.0 for c in agg.columns if c.endswith("_std")}).reset_index()
    lines = ["| method | labeled | structure | Dice | IoU | HD95 (px) | ASSD (px) |", "|---|---|---|---|---|---|---|"]
    for _, row in agg.iterrows():
        cells = [f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_std']:.3f}" for m in ("dice", "iou", "hd95", "assd")]
        lines.append(f"| {row['method']} | {row['labeled_fraction']:g} | {row['class']} | " + " | ".join(cells) + " |")
    write_text(run_dir / "results.md", "# MOSXAV-Bench run\n\nTest split; mean ± std over seeds; metrics per `mosxav.metrics`.\n\n" + "\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(8, 4))
    pivot = agg[agg["class_id"] > 0].pivot_table(index="class", columns="method", values="dice_mean")
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("Dice (test)")
    ax.set_xlabel("structure")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(run_dir / "dice_by_structure.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    for method, group in agg[agg["class"] == "mean"].groupby("method"):
        ax.errorbar(group["labeled_fraction"], group["dice_mean"], yerr=group["dice_std"], marker="o", label=method)
    ax.set_xlabel("labeled fraction")
    ax.set_ylabel("mean Dice (test)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "dice_vs_fraction.png", dpi=100)
    plt.close(fig)
    return per_seed


def run(config: dict[str, Any], run_dir: str | Path) -> pd.DataFrame:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    root = dataset_root(config)
    tables = []
    with progress_bar() as progress:
        for method_name in config["methods"]:
            get_method(method_name)  # fail early on a typo, before hours of training
        for method_name in config["methods"]:
            for fraction in config["labeled_fractions"]:
                for seed in config["seeds"]:
                    pred_dir = run_one(method_name, float(fraction), int(seed), root, config, run_dir, progress)
                    table = evaluate_semantic(root, pred_dir, split="test")
                    tables.append(table.assign(method=method_name, labeled_fraction=float(fraction), seed=int(seed)))
    frames = pd.concat(tables, ignore_index=True)
    write_text(run_dir / "per_frame.csv", frames.to_csv(index=False, float_format="%.6f"))
    summary = write_report(frames, run_dir)
    _overlays(root, run_dir, config)
    return summary


def _overlays(root: Path, run_dir: Path, config: dict[str, Any]) -> None:
    """Ground truth and each method's first-seed prediction on a few test frames, side by side."""
    from mosxav.io import read_index_mask

    test = MOSXAV(root, "test", annotated_only=True)
    picks = np.linspace(0, len(test) - 1, num=min(int(config["overlays"]), len(test))).astype(int)
    tiles = []
    fraction, seed = config["labeled_fractions"][0], config["seeds"][0]
    for index in picks:
        item = test[int(index)]
        tiles.append((item["image"], item["semantic"], f"GT {item['sequence']}/{item['frame']}"))
        for method_name in config["methods"]:
            path = run_dir / "predictions" / method_name / f"frac{float(fraction):g}" / f"seed{seed}" / item["sequence"] / f"{item['frame']}.png"
            tiles.append((item["image"], read_index_mask(path), method_name))
    contact_sheet(tiles, run_dir / "overlays.png", columns=1 + len(config["methods"]))
