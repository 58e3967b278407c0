"""The merge of a run's shards (``mosxav-bench run --shard i/n``) into one run folder.

A large study (every fold x seed x ablation arm) is an array job: ``mosxav-bench run --shard i/n``
trains and scores only the cells ``i, i+n, i+2n, ...`` of the run matrix into its own folder, and
``mosxav-bench merge OUT SHARD...`` joins the shards' ``per_frame.csv`` into one run folder with the
same ``results.md``, ``summary.csv`` and plots an unsharded run writes (overlays stay in the shards).
Every shard must come from the same config; cells that no shard scored are named in the merged
report, never silently dropped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from mosxav.data.files import read_yaml, write_text
from mosxav.errors import DataError
from mosxav.harness.config import RunConfig, parse_config
from mosxav.harness.report import CELL_COLUMNS, write_report
from mosxav.harness.run import matrix


def _cell_key(method: str, fraction: float, noise: float, seed: int, fold: float | None) -> tuple:
    """A cell's identity, the same whether read from the matrix or from ``per_frame.csv``."""
    return (method, round(float(fraction), 6), round(float(noise), 6), int(seed), -1 if pd.isna(fold) else int(fold))


def config_differences(config: RunConfig, other: RunConfig) -> list[str]:
    """The top-level keys whose values differ. Compared as parsed configs, not as text: a shard written
    before a key was added to the schema (so without it, at its default) is the same run."""
    return [f.name for f in dataclasses.fields(RunConfig) if getattr(config, f.name) != getattr(other, f.name)]


def merge_runs(shard_dirs: list[Path], out: Path) -> tuple[pd.DataFrame, list[str]]:
    """Join shard run folders into ``out``; returns the per-seed summary and the cells no shard scored."""
    if not shard_dirs:
        raise ValueError("merge needs at least one shard run folder")
    configs = {}
    for folder in shard_dirs:
        for name in ("config.yaml", "per_frame.csv"):
            if not (folder / name).is_file():
                raise DataError(folder / name, "missing: not a finished run folder (did its shard finish?)")
        configs[folder] = parse_config(read_yaml(folder / "config.yaml", "run config"), folder / "config.yaml")
    first = shard_dirs[0]
    config: RunConfig = configs[first]
    for folder, other in configs.items():
        differing = config_differences(config, other)
        if differing:
            raise DataError(
                folder / "config.yaml",
                f"differs from {first / 'config.yaml'} in {', '.join(differing)}: shards of different runs",
            )
    cells = matrix(config)
    position = {_cell_key(c.method, c.labeled_fraction, c.label_noise, c.seed, c.fold): k for k, c in enumerate(cells)}
    tables = [pd.read_csv(folder / "per_frame.csv", dtype={"frame": str, "sequence": str}) for folder in shard_dirs]
    frames = pd.concat(tables, ignore_index=True)
    if "fold" not in frames.columns:
        frames["fold"] = None
    keys = [_cell_key(*row) for row in frames[CELL_COLUMNS].itertuples(index=False, name=None)]
    unknown = sorted({k for k in keys if k not in position})
    if unknown:
        raise DataError(first, f"rows of cells that are not in the run's matrix: {unknown[:3]}")
    frames["_cell"] = [position[k] for k in keys]
    if frames.duplicated(["_cell", "sequence", "frame", "class_id"]).any():
        raise DataError(out, "a cell was scored by more than one shard: merge each shard once")
    frames = frames.sort_values("_cell", kind="stable").drop(columns="_cell")
    if frames["fold"].isna().all():
        frames = frames.drop(columns="fold")
    scored = {position[k] for k in keys}
    missing = [cells[k].tag for k in range(len(cells)) if k not in scored]
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", (first / "config.yaml").read_text(encoding="utf-8"))
    write_text(out / "per_frame.csv", frames.to_csv(index=False, float_format="%.6f"))
    untrained = [name for name in config.methods if not config.method_class(name).needs_training]
    trainings = [pd.read_csv(f / "training.csv") for f in shard_dirs if (f / "training.csv").is_file()]
    training = pd.concat(trainings, ignore_index=True) if trainings else None
    if training is not None:
        write_text(out / "training.csv", training.to_csv(index=False, float_format="%.6f"))
    summary = write_report(frames, out, untrained=untrained, training=training)
    note = [
        "",
        f"Merged from {len(shard_dirs)} shard run folder(s): {len(scored)} of {len(cells)} cells scored.",
    ]
    if missing:
        note += ["", "Cells no shard scored (not in any table above):", ""] + [f"- `{tag}`" for tag in missing]
    report = (out / "results.md").read_text(encoding="utf-8")
    write_text(out / "results.md", report + "\n".join(note) + "\n")
    return summary, missing
