"""The experiment harness: methods x labeled fractions x label-noise rates x seeds, trained and scored
the same way.

Writes a run folder a person can read (``config.yaml``, ``per_frame.csv``, ``summary.csv``,
``results.md``, plots, overlays; see ``mosxav.harness.report``) and, per cell, a valid leaderboard
submission (``submissions/<method>/frac*/noise*/seed*/``: ``submission.yaml``, ``partition.yaml``,
predicted class PNGs). Entering those into a leaderboard is the job of the layer above.

The ``scale`` knob multiplies the resolution (snapped to the U-Net's stride) and the number of
iterations, so one config (``configs/paper.yaml``: 512 px, 30k iterations) runs at a fraction of its
size on a CPU (``--scale 0.25``) and in full on a GPU. Under ``torchrun`` every rank trains (DDP) and
rank 0 predicts, scores and writes the report.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from mosxav import toolkit_version
from mosxav.data.files import write_text
from mosxav.data.named import resolve_root
from mosxav.data.splits import make_partition
from mosxav.harness.cells import Cell
from mosxav.harness.config import RunConfig, config_yaml
from mosxav.harness.events import BeatingProgress, CellEvents
from mosxav.harness.machine import machine_facts
from mosxav.harness.model_card import MODEL_FOLDER, write_model
from mosxav.harness.parallel import default_jobs, run_cells_in_parallel
from mosxav.harness.plan import CellPlan, plan_cell
from mosxav.harness.predict import predict_items
from mosxav.harness.report import CELL_COLUMNS, write_overlays, write_report
from mosxav.harness.sources import RunData, build_source
from mosxav.schema import to_mapping
from mosxav.submission import SUBMISSION_FILE, SubmissionMeta
from mosxav.training.batches import FrameTensors
from mosxav.training.distributed import DistContext, barrier, init_distributed, resolve_device
from mosxav.training.network_input import InputConfig
from mosxav.training.protocol import Method
from mosxav.training.trainer import ProgressSink, Trainer, check_settings, native_bf16, progress_bar

#: Who a reference run's submission names as its authors and contact.
REFERENCE_AUTHORS = ["MOSXAV-Bench reference run"]
REFERENCE_CONTACT = "reference@mosxav-bench.invalid"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the matrix cells whose position is ``index`` modulo ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str, environ: Mapping[str, str] | None = None) -> Shard:
        """``"i/n"`` with 0 <= i < n, as given on the command line; ``"slurm"``: this task of a SLURM job
        array (``sbatch --array``), read from ``SLURM_ARRAY_TASK_ID`` (less ``SLURM_ARRAY_TASK_MIN``) and
        ``SLURM_ARRAY_TASK_COUNT``."""
        if text == "slurm":
            return cls.from_slurm(os.environ if environ is None else environ)
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"--shard {text!r}: need 0 <= I < N")
        return cls(index, count)

    @classmethod
    def from_slurm(cls, environ: Mapping[str, str]) -> Shard:
        """The shard of this SLURM array task (an array ``--array=0-N`` or ``=1-N``, any step 1)."""
        try:
            task, count = int(environ["SLURM_ARRAY_TASK_ID"]), int(environ["SLURM_ARRAY_TASK_COUNT"])
            first = int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        except KeyError as missing:
            raise ValueError(
                f"--shard slurm: {missing.args[0]} is not set (not inside an sbatch --array job)"
            ) from None
        except ValueError:
            raise ValueError("--shard slurm: SLURM_ARRAY_TASK_* are not integers") from None
        return cls.parse(f"{task - first}/{count}", {})

    def select(self, cells: list[Cell]) -> list[Cell]:
        return cells[self.index :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def noise_reaches(config: RunConfig, cls: type[Method]) -> bool:
    """Whether the run's label noise changes what ``cls`` trains on: noise on the labeled set reaches
    every trained method; noise on pseudo-labels only the methods that train on hard pseudo-labels."""
    if not cls.needs_training:
        return False
    return "labeled" in config.label_noise_applies_to or cls.uses_pseudo_labels


def matrix(config: RunConfig) -> list[Cell]:
    """The run's cells; a fixed-fraction method runs at its own fraction, an untrained one once
    (fraction 0, no noise, first seed), a method the noise does not reach at noise 0 only (the report
    stands it beside every rate); with ``dataset.folds`` every cell once per fold."""
    spec = config.dataset
    folds = (spec.only_folds or list(range(spec.folds))) if spec.folds else [None]
    cells = []
    for name in config.methods:
        cls = config.method_class(name)  # fails early on a typo, before hours of training
        fractions = [cls.fixed_labeled_fraction] if cls.fixed_labeled_fraction is not None else config.labeled_fractions
        noises = config.label_noise_rates
        seeds = config.seeds
        if not cls.needs_training:
            fractions, noises, seeds = [0.0], [0.0], seeds[:1]
        elif not noise_reaches(config, cls):
            noises = [0.0]
        cells += [
            Cell(name, float(f), float(n), int(s), k) for f in fractions for n in noises for s in seeds for k in folds
        ]
    return cells


def run_cells(config: RunConfig, shard: Shard | None = None) -> list[Cell]:
    """The cells a run trains and scores: the whole matrix, or one shard's."""
    cells = matrix(config)
    return cells if shard is None else shard.select(cells)


def cell_settings(plan: CellPlan, config: RunConfig) -> dict[str, Any]:
    """What a cell's weights depend on: its checkpoints record it, and a run resumes them only when
    nothing here changed (``mosxav.training.trainer.check_settings``)."""
    return {
        "method": plan.cell.method,
        "options": to_mapping(plan.options),
        "train": to_mapping(plan.train),
        "input": to_mapping(plan.input),
        "size": plan.size,
        "labeled_noise": plan.labeled_noise,
        "dataset": to_mapping(config.dataset),
    }


def prepare_resume(plans: list[CellPlan], config: RunConfig, run_dir: Path, restart: bool) -> None:
    """Before anything trains: with ``restart``, remove the planned cells' checkpoints and predictions;
    otherwise refuse, naming the checkpoint and the settings that differ, to resume a cell trained
    with other settings (a changed ``train.lr`` would otherwise keep the old weights under the new
    config)."""
    for plan in plans:
        work = run_dir / "work" / plan.cell.tag
        if restart:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(run_dir / "submissions" / plan.cell.tag, ignore_errors=True)
            continue
        checkpoint = work / "last.pt"
        if plan.trained and checkpoint.is_file():
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            check_settings(checkpoint, state.get("settings"), cell_settings(plan, config))


def run_cell(
    plan: CellPlan, data: RunData, config: RunConfig, run_dir: Path, progress: ProgressSink | None, dist: DistContext
) -> Path:
    """Train one cell and write its test predictions as a submission; returns the predictions folder."""
    cell, size, input_config = plan.cell, plan.size, plan.input
    device = resolve_device(config.device, dist)
    work = run_dir / "work" / cell.tag
    torch.manual_seed(cell.seed)
    method = plan.method(plan.options, data.num_classes)
    if plan.trained:
        partition = make_partition(data.records, fraction=cell.labeled_fraction, seed=cell.seed)
        if dist.is_main:
            partition.to_yaml(work / "partition.yaml")
        labeled_ids = partition.labeled_set()
        labeled_idx = [i for i, r in enumerate(data.records) if f"{r.sequence}/{r.stem}" in labeled_ids]
        unlabeled_idx = [i for i, r in enumerate(data.records) if f"{r.sequence}/{r.stem}" not in labeled_ids]
        labeled = FrameTensors(
            data.train,
            labeled_idx,
            size,
            True,
            label_noise=plan.labeled_noise,
            noise_seed=cell.seed,
            input_config=input_config,
        )
        unlabeled = FrameTensors(data.train, unlabeled_idx, size, False, input_config=input_config)
        val = FrameTensors(data.val, range(len(data.val)), size, True, input_config=input_config)
        trainer = Trainer(
            method,
            labeled,
            unlabeled,
            val,
            plan.train,
            work,
            seed=cell.seed,
            device=device,
            progress=progress,
            dist=dist,
            settings=cell_settings(plan, config),
        )
        trainer.fit()
    pred_dir = run_dir / "submissions" / cell.tag / "predictions"
    if dist.is_main:
        layout = plan.train.channels_last and plan.trained
        predict_items(
            method.to(device),
            data.test,
            size,
            pred_dir,
            device,
            config.predict,
            channels_last=layout,
            input_config=input_config,
            amp=plan.train.amp and native_bf16(device),  # predicted as it was trained and validated
        )
        write_submission_meta(pred_dir.parent, plan, method, work / "partition.yaml", config)
        write_model(pred_dir.parent / MODEL_FOLDER, plan, method, data.num_classes, config.predict)
    barrier(dist)
    return pred_dir


def run_notes(config: RunConfig, input_config: InputConfig | None = None) -> str:
    """A submission's ``notes``: the resolution, the steps, the input the method saw (``input_config``,
    default the run's) and any test-time trick a reader must know of."""
    train = config.effective_train
    parts = [f"mosxav-bench run, {config.effective_size()} px, {train.iterations} iterations"]
    if train.crop is not None:
        parts.append(f"trained on {train.crop}-px crops")
    seen = config.input if input_config is None else input_config
    if seen.contrast == "local":
        parts.append(f"local contrast normalization (sigma {seen.sigma:g} of the frame side)")
    if config.predict.flips:
        parts.append("test-time flip averaging")
    if config.predict.min_component:
        parts.append(f"components under {config.predict.min_component} px removed")
    return ", ".join(parts)


def write_submission_meta(folder: Path, plan: CellPlan, method: Method, partition: Path, config: RunConfig) -> None:
    """``submission.yaml`` (+ the partition) beside a cell's predictions: a valid leaderboard submission."""
    cell = plan.cell
    has_partition = partition.is_file()
    if has_partition:
        write_text(folder / "partition.yaml", partition.read_text(encoding="utf-8"))
    meta = SubmissionMeta(
        method=cell.method,
        authors=tuple(REFERENCE_AUTHORS),
        contact=REFERENCE_CONTACT,
        labeled_fraction=cell.labeled_fraction,
        seeds=(cell.seed,),
        parameters=sum(p.numel() for p in method.parameters() if p.requires_grad),
        extra_training_data=False,
        toolkit_version=toolkit_version(),
        notes=f"{run_notes(config, plan.input)}, predict_with: {method.options.predict_with}",
        partition="partition.yaml" if has_partition else None,
    )
    write_text(folder / SUBMISSION_FILE, yaml.safe_dump(meta.to_mapping(), sort_keys=False))


def load_run_data(config: RunConfig, dist: DistContext, fold: int | None = None) -> RunData:
    """The run's data (of one fold); rank 0 generates or downloads it first, the other ranks then read it."""
    data = build_source(config.dataset, resolve_root, fold) if dist.is_main else None
    barrier(dist)
    return data if data is not None else build_source(config.dataset, resolve_root, fold)


def scored_table(cell: Cell, data: RunData, pred_dir: Path) -> pd.DataFrame:
    """A cell's per-frame scores, keyed by the cell (``CELL_COLUMNS``; no fold outside cross-validation)."""
    values = (cell.method, cell.labeled_fraction, cell.label_noise, cell.seed, cell.fold)
    identity = dict(zip(CELL_COLUMNS, values, strict=True))
    if cell.fold is None:
        del identity["fold"]
    return data.score(pred_dir).assign(**identity)


def training_table(cells: list[Cell], run_dir: Path) -> pd.DataFrame:
    """One row per trained cell: its identity and its ``training.json`` (best validation step, the
    unlabeled share of the loss); ``training.csv`` in the run folder."""
    rows = []
    for cell in cells:
        path = run_dir / "work" / cell.tag / "training.json"
        if path.is_file():
            identity = dict(
                zip(
                    CELL_COLUMNS,
                    (cell.method, cell.labeled_fraction, cell.label_noise, cell.seed, cell.fold),
                    strict=True,
                )
            )
            rows.append(identity | json.loads(path.read_text(encoding="utf-8")))
    table = pd.DataFrame(rows)
    if not table.empty and table["fold"].isna().all():
        table = table.drop(columns="fold")
    return table


def score_cell(plan: CellPlan, config: RunConfig, run_dir: Path, progress: Any) -> pd.DataFrame:
    """Train, predict and score one cell in a process of its own (the parallel path of ``run``)."""
    dist = DistContext()
    data = load_run_data(config, dist, plan.cell.fold)
    pred_dir = run_cell(plan, data, config, run_dir, progress, dist)
    return scored_table(plan.cell, data, pred_dir)


def run(
    config: RunConfig,
    run_dir: str | Path,
    shard: Shard | None = None,
    jobs: int | None = None,
    restart: bool = False,
) -> tuple[pd.DataFrame, RunData] | None:
    """Train and score every cell (or one shard's); returns the per-seed summary and the data (None on
    ranks other than 0). ``jobs``: cells trained at once in worker processes (default: one per core
    on a CPU, see ``mosxav.harness.parallel``; one on a GPU). A folder holding checkpoints of other
    settings is refused unless ``restart`` (which trains the cells anew)."""
    dist = init_distributed()
    run_dir = Path(run_dir)
    cells = run_cells(config, shard)
    if not cells:
        raise ValueError(f"shard {shard} of a run of {len(matrix(config))} cells is empty")
    plans = [plan_cell(config, cell) for cell in cells]  # the config resolved once, before anything trains
    if dist.is_main:
        prepare_resume(plans, config, run_dir, restart)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", config_yaml(config, dist.world_size))
        facts = machine_facts() | {"toolkit": toolkit_version(), "jobs": jobs or 0, "world_size": dist.world_size}
        write_text(run_dir / "machine.json", json.dumps(facts, indent=1) + "\n")
    folds = list(dict.fromkeys(cell.fold for cell in cells))
    data_by_fold = {fold: load_run_data(config, dist, fold) for fold in folds}
    if dist.is_main:
        for data in data_by_fold.values():
            data.verify()  # a corrupt test mask fails now, not after every cell has trained
    jobs = default_jobs(config, plans, dist) if jobs is None else jobs
    if jobs > 1 and dist.enabled:
        raise ValueError("--jobs runs cells in parallel processes on one machine; under torchrun use one")
    tables = []
    with progress_bar() as progress:
        parallel = jobs > 1 and len(cells) > 1
        events = CellEvents(progress.console, plans, run_dir, jobs if parallel else 1) if dist.is_main else None
        if parallel:
            tables = run_cells_in_parallel(score_cell, plans, config, run_dir, jobs, progress, events)
        else:
            for plan in plans:
                data = data_by_fold[plan.cell.fold]
                if events is not None:
                    events.start(plan.tag)
                shown = BeatingProgress(progress, events, plan.tag) if events is not None else None
                pred_dir = run_cell(plan, data, config, run_dir, shown, dist)
                if dist.is_main:
                    tables.append(scored_table(plan.cell, data, pred_dir))
                    events.finish(plan.tag)
    if not dist.is_main:
        return None
    frames = pd.concat(tables, ignore_index=True)
    write_text(run_dir / "per_frame.csv", frames.to_csv(index=False, float_format="%.6f"))
    untrained = [name for name in config.methods if not config.method_class(name).needs_training]
    training = training_table(cells, run_dir)
    if not training.empty:
        write_text(run_dir / "training.csv", training.to_csv(index=False, float_format="%.6f"))
    summary = write_report(frames, run_dir, untrained=untrained, training=training)
    first_cells: dict[str, str] = {}
    for cell in cells:  # each method's first cell (of the first fold), methods in config order
        if cell.fold == folds[0]:
            first_cells.setdefault(cell.method, cell.tag)
    write_overlays(data_by_fold[folds[0]], run_dir, first_cells, config.overlays)
    return summary, data_by_fold[folds[0]]
