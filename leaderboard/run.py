"""``mosxav-bench run``: methods x labeled fractions x seeds, trained and scored the same way.

Writes a run folder a person can read: ``config.yaml`` (resolved), ``per_frame.csv``,
``summary.csv``, ``results.md`` (mean ± std over seeds), ``dice_by_structure.png``,
``dice_vs_fraction.png`` and prediction overlays for a few test frames.

The ``scale`` knob multiplies the resolution (snapped to the U-Net's stride) and the number of
iterations, so one config (``configs/paper.yaml``: 512 px, 30k iterations) runs at a fraction of its
size on a CPU (``--scale 0.25``) and in full on a GPU. Under ``torchrun`` every rank trains (DDP) and
rank 0 predicts, scores and writes the report.
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

from mosxav.distributed import DistContext, barrier, init_distributed, resolve_device
from mosxav.errors import DataError
from mosxav.io import read_index_mask, read_yaml, write_semantic_mask, write_text
from mosxav.metrics import summarize
from mosxav.protocol import Method, get_method
from mosxav.splits import make_partition
from mosxav.trainer import TrainConfig, Trainer, progress_bar
from mosxav.training_data import FrameTensors, resize_pair
from mosxav.visualize import contact_sheet

from .sources import RunData, build_source

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": {"name": "mosxav-synthetic"},
    "size": 128,
    "scale": 1.0,
    "device": "auto",
    "methods": ["tophat_otsu", "supervised", "mean_teacher", "cps", "diffproto"],
    "labeled_fractions": [0.25],
    "label_noise_rates": [0.0],
    "pseudo_label_noise": False,
    "seeds": [0],
    "train": {"iterations": 300, "batch_size": 4, "unlabeled_batch_size": 4, "lr": 0.002, "optimizer": "adamw",
              "checkpoint_every": 100, "val_every": 50, "log_every": 10, "amp": False, "compile": False},
    "model": {"width": 16, "depth": 4},
    "method_options": {"diffproto": {"denoiser_width": 8}},
    "overlays": 6,
    "leaderboard": True,  # enter the run's clean-label cells into the leaderboard as reference runs
    "leaderboard_db": None,  # default: $MOSXAV_HOME/leaderboard/leaderboard.sqlite
}


def load_config(path: str | Path | None, scale: float | None = None) -> dict[str, Any]:
    """The default config, updated (one level deep) by a YAML file read with ``yaml.safe_load``."""
    config = copy.deepcopy(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        user = read_yaml(path, "config file") or {}
        if not isinstance(user, dict):
            raise DataError(path, "a run config must be a mapping")
        unknown = sorted(set(user) - set(config))
        if unknown:
            raise DataError(path, f"unknown keys {unknown}; known: {sorted(config)}")
        for key, value in user.items():
            config[key] = {**config[key], **value} if isinstance(config[key], dict) and isinstance(value, dict) else value
    if scale is not None:
        config["scale"] = scale
    return config


def effective_settings(config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Resolution and train settings after ``scale`` (size snapped to a multiple of 2**depth)."""
    scale = float(config.get("scale", 1.0))
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    stride = 2 ** int(config["model"].get("depth", 4))
    size = max(stride, int(round(int(config["size"]) * scale / stride)) * stride)
    train = dict(config["train"])
    train["iterations"] = max(1, int(round(int(train["iterations"]) * scale)))
    for key in ("checkpoint_every", "val_every", "log_every"):
        train[key] = max(1, min(int(train[key]), train["iterations"]))
    return size, train


@torch.no_grad()
def predict_items(method: Method, items: Any, size: int, out_dir: Path, device: torch.device, batch: int = 8) -> None:
    """Predict every item at the run size, upsample probabilities to the frame size, write class PNGs."""
    method.eval()
    for start in range(0, len(items), batch):
        chunk = [items[i] for i in range(start, min(start + batch, len(items)))]
        x = torch.stack([torch.from_numpy(resize_pair(it["image"], None, size)[0].astype(np.float32) / 255.0)[None] for it in chunk])
        probs = method.predict(x.to(device)).float().cpu()
        for item, p in zip(chunk, probs):
            full = F.interpolate(p[None], size=item["image"].shape, mode="bilinear", align_corners=False)
            write_semantic_mask(out_dir / item["sequence"] / f"{item['frame']}.png", full.argmax(1)[0].numpy().astype(np.uint8))


def _size_and_iterations(config: dict[str, Any]) -> tuple[int, int]:
    size, train = effective_settings(config)
    return size, train["iterations"]


def run_tag(method_name: str, fraction: float, noise: float, seed: int) -> str:
    return f"{method_name}/frac{fraction:g}/noise{noise:g}/seed{seed}"


def run_one(method_name: str, fraction: float, noise: float, seed: int, data: RunData, config: dict[str, Any], run_dir: Path,
            progress, dist: DistContext) -> Path:
    """Train one (method, fraction, label-noise, seed) cell and write its test predictions; returns their folder."""
    size, train_settings = effective_settings(config)
    device = resolve_device(str(config.get("device", "auto")), dist)
    cls = get_method(method_name)
    tag = run_tag(method_name, fraction, noise, seed)
    work = run_dir / "work" / tag
    torch.manual_seed(seed)
    options = {**config["model"], **config.get("method_options", {}).get(method_name, {}), "iterations": train_settings["iterations"]}
    if config.get("pseudo_label_noise"):
        options["pseudo_label_noise"] = noise
    method = cls(options, data.num_classes)
    if cls.needs_training:
        partition = make_partition(data.records, fraction=fraction, seed=seed)
        if dist.is_main:
            partition.to_yaml(work / "partition.yaml")
        labeled_ids = partition.labeled_set()
        labeled_idx = [i for i, r in enumerate(data.records) if f"{r.sequence}/{r.stem}" in labeled_ids]
        unlabeled_idx = [i for i, r in enumerate(data.records) if f"{r.sequence}/{r.stem}" not in labeled_ids]
        labeled = FrameTensors(data.train, labeled_idx, size, True, label_noise=noise, noise_seed=seed)
        trainer = Trainer(method, labeled, FrameTensors(data.train, unlabeled_idx, size, False),
                          FrameTensors(data.val, range(len(data.val)), size, True), TrainConfig(seed=seed, **train_settings), work,
                          device=device, progress=progress, dist=dist)
        trainer.fit()
    pred_dir = run_dir / "submissions" / tag / "predictions"
    if dist.is_main:
        predict_items(method.to(device), data.test, size, pred_dir, device)
        write_submission_meta(pred_dir.parent, method_name, fraction, seed, method, work / "partition.yaml", config)
    barrier(dist)
    return pred_dir


def write_submission_meta(folder: Path, method_name: str, fraction: float, seed: int, method: Method, partition: Path,
                          config: dict[str, Any]) -> None:
    """``submission.yaml`` (+ the partition) beside a cell's predictions: a valid leaderboard submission."""
    from .board import toolkit_version

    meta: dict[str, Any] = {
        "method": method_name, "authors": ["MOSXAV-Bench reference run"], "contact": "reference@mosxav-bench.invalid",
        "labeled_fraction": fraction, "seeds": [seed],
        "parameters": sum(p.numel() for p in method.parameters() if p.requires_grad), "extra_training_data": False,
        "toolkit_version": toolkit_version(),
        "notes": "mosxav-bench run, {} px, {} iterations".format(*_size_and_iterations(config)),
    }
    if partition.is_file():
        write_text(folder / "partition.yaml", partition.read_text(encoding="utf-8"))
        meta["partition"] = "partition.yaml"
    write_text(folder / "submission.yaml", yaml.safe_dump(meta, sort_keys=False))


def matrix(config: dict[str, Any]) -> list[tuple[str, float, float, int]]:
    """The (method, fraction, label-noise rate, seed) cells; a fixed-fraction method runs at its own
    fraction, an untrained one once (fraction 0, no noise, first seed)."""
    cells = []
    for method_name in config["methods"]:
        cls = get_method(method_name)  # fails early on a typo, before hours of training
        fixed = getattr(cls, "fixed_labeled_fraction", None)
        fractions = [fixed] if fixed else [float(f) for f in config["labeled_fractions"]]
        noises = [float(n) for n in config.get("label_noise_rates", [0.0])]
        seeds = [int(s) for s in config["seeds"]]
        if not cls.needs_training:
            fractions, noises, seeds = [0.0], [0.0], seeds[:1]
        cells += [(method_name, float(f), n, s) for f in fractions for n in noises for s in seeds]
    return cells


def run(config: dict[str, Any], run_dir: str | Path) -> pd.DataFrame | None:
    """Train and score every cell; returns the per-seed summary (None on ranks other than 0)."""
    from mosxav.hf import resolve_root

    dist = init_distributed()
    run_dir = Path(run_dir)
    size, train_settings = effective_settings(config)
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = {**config, "effective": {"size": size, "iterations": train_settings["iterations"], "world_size": dist.world_size}}
        write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    data = build_source(config["dataset"], resolve_root) if dist.is_main else None
    barrier(dist)  # rank 0 may have generated or downloaded the data
    if data is None:
        data = build_source(config["dataset"], resolve_root)
    tables = []
    with progress_bar() as progress:
        for method_name, fraction, noise, seed in matrix(config):
            pred_dir = run_one(method_name, fraction, noise, seed, data, config, run_dir, progress if dist.is_main else None, dist)
            if dist.is_main:
                tables.append(data.score(pred_dir).assign(method=method_name, labeled_fraction=fraction, label_noise=noise, seed=seed))
    if not dist.is_main:
        return None
    frames = pd.concat(tables, ignore_index=True)
    write_text(run_dir / "per_frame.csv", frames.to_csv(index=False, float_format="%.6f"))
    summary = write_report(frames, run_dir)
    write_overlays(data, run_dir, config)
    if config.get("leaderboard") and data.gt_root is not None:
        record_reference_runs(run_dir, data, config)
    return summary


def record_reference_runs(run_dir: Path, data: RunData, config: dict[str, Any], db: Path | None = None) -> list[int]:
    """Enter every clean-label cell of the run into the leaderboard as a reference run."""
    from .board import default_db, submit
    from .store import DuplicateSubmission, Store

    store = Store(db or config.get("leaderboard_db") or default_db())
    ids = []
    for method_name, fraction, noise, seed in matrix(config):
        if noise > 0:
            continue
        try:
            ids.append(submit(run_dir / "submissions" / run_tag(method_name, fraction, noise, seed), data.gt_root, store,
                              dataset=data.name, is_reference=True))
        except DuplicateSubmission:
            pass  # the same predictions (e.g. an untrained baseline) are already in the table
    write_text(run_dir / "leaderboard.md", _leaderboard_markdown(store))
    return ids


def _leaderboard_markdown(store) -> str:
    from .board import build_table
    from .render import to_markdown

    table, _ = build_table(store)
    return "# MOSXAV-Bench leaderboard (after this run)\n\n" + to_markdown(table)


def write_report(frames: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Summary CSV, Markdown table (mean ± std over seeds) and plots from the per-frame table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = summarize(frames, by=["method", "labeled_fraction", "label_noise", "seed"])
    write_text(run_dir / "summary.csv", per_seed.to_csv(index=False, float_format="%.6f"))
    agg = per_seed.groupby(["method", "labeled_fraction", "label_noise", "class_id", "class"])[["dice", "iou", "hd95", "assd", "nsd"]].agg(["mean", "std"])
    agg.columns = [f"{metric}_{stat}" for metric, stat in agg.columns]
    agg = agg.fillna({c: 0.0 for c in agg.columns if c.endswith("_std")}).reset_index()
    order = {m: i for i, m in enumerate(dict.fromkeys(frames["method"]))}
    agg = agg.sort_values(["class_id", "labeled_fraction", "label_noise"]).sort_values("method", key=lambda s: s.map(order), kind="stable")
    n_seeds = frames.groupby("method")["seed"].nunique().to_dict()
    lines = ["| method | labeled | label noise | seeds | structure | Dice | IoU | HD95 (px) | ASSD (px) |", "|---|---|---|---|---|---|---|---|---|"]
    for _, row in agg.iterrows():
        cells = [f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_std']:.3f}" for m in ("dice", "iou", "hd95", "assd")]
        lines.append(f"| {row['method']} | {row['labeled_fraction']:g} | {row['label_noise']:g} | {n_seeds[row['method']]} | {row['class']} | " + " | ".join(cells) + " |")
    write_text(run_dir / "results.md", "# MOSXAV-Bench run\n\nTest split; mean ± std over seeds; metrics and aggregation per "
               "`mosxav.metrics` (HD95/ASSD in pixels at the frame's resolution; labeled 0 = untrained).\n\n" + "\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(9, 4))
    pivot = agg[(agg["class_id"] > 0) & (agg["label_noise"] == agg["label_noise"].min())].pivot_table(index="class", columns="method", values="dice_mean")
    pivot = pivot[[m for m in order if m in pivot.columns]]
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("Dice (test)")
    ax.set_xlabel("structure")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(run_dir / "dice_by_structure.png", dpi=100)
    plt.close(fig)
    means = agg[agg["class"] == "mean"]
    _dice_curve(plt, means[means["label_noise"] == means["label_noise"].min()], "labeled_fraction", ["method"],
                "labeled fraction", run_dir / "dice_vs_fraction.png", (5, 4))
    if agg["label_noise"].nunique() > 1:
        _dice_curve(plt, means, "label_noise", ["method", "labeled_fraction"], "label noise rate (labeled set)",
                    run_dir / "dice_vs_noise.png", (6, 4))
    return per_seed


def _dice_curve(plt, rows: pd.DataFrame, x: str, by: list[str], xlabel: str, path: Path, figsize: tuple[int, int]) -> None:
    """Mean Dice (± std over seeds) against ``x``, one line per ``by`` group."""
    fig, ax = plt.subplots(figsize=figsize)
    for key, group in rows.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        label = key[0] if len(key) == 1 else f"{key[0]} ({key[1]:g})"
        ax.errorbar(group[x], group["dice_mean"], yerr=group["dice_std"], marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean Dice (test)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_overlays(data: RunData, run_dir: Path, config: dict[str, Any]) -> None:
    """Ground truth and each method's first prediction on a few test frames, side by side."""
    picks = np.linspace(0, len(data.test) - 1, num=min(int(config["overlays"]), len(data.test))).astype(int)
    cells = {}
    for method_name, fraction, noise, seed in matrix(config):
        cells.setdefault(method_name, run_tag(method_name, fraction, noise, seed))
    tiles = []
    for index in picks:
        item = data.test[int(index)]
        tiles.append((item["image"], item["semantic"], f"GT {item['sequence']}/{item['frame']}"))
        for method_name, tag in cells.items():
            path = run_dir / "submissions" / tag / "predictions" / item["sequence"] / f"{item['frame']}.png"
            tiles.append((item["image"], read_index_mask(path), method_name))
    contact_sheet(tiles, run_dir / "overlays.png", columns=1 + len(cells))
