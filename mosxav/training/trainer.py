"""The one trainer every method shares: seeded, checkpointed with exact resume, logged, validated.

Determinism: every source of randomness in step ``s`` (batch indices, augmentation, the methods'
own noise) is reseeded from ``(seed, rank, s)``, so the step is a pure function of the weights,
the optimiser state and ``s``. A run killed and resumed from its last checkpoint therefore continues
exactly as if it had never stopped (the checkpoint holds model + EMA teachers + buffers, optimiser
and step; the data position is the step). Checkpoints hold only tensors and plain types and are read
with ``torch.load(weights_only=True)``.

Distributed: under ``torchrun`` the method is wrapped in ``DistributedDataParallel`` (its ``forward``
is its training step) and rank r takes the r-th slice of each global batch, which is what a
``DistributedSampler`` does, computed per step so that resume stays exact. Only rank 0 writes files.
``amp`` runs the step under bfloat16 autocast where the device has native bf16 (``native_bf16``), and
``compile`` wraps it in ``torch.compile``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from mosxav.data.files import atomic_path
from mosxav.errors import DataError
from mosxav.training.batches import photometric_augment, random_crop, strong_augment, weak_augment
from mosxav.training.distributed import DistContext, barrier
from mosxav.training.protocol import Method


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation schedule every method shares (``train:`` in a run config; defaults = the quick run)."""

    iterations: int = 300
    batch_size: int = 4  # labeled frames per process and step
    unlabeled_batch_size: int = 4  # per process and step
    lr: float = 0.002
    optimizer: Literal["sgd", "adamw"] = "adamw"  # sgd: the SSL papers' choice; adamw converges in fewer steps
    momentum: float = 0.9
    weight_decay: float = 1e-4
    checkpoint_every: int = 100
    val_every: int = 50
    log_every: int = 10
    rotate: bool = True  # weak augmentation rotates (SSL4MIS); off = flips and shifts only
    intensity: bool = False  # also jitter the labeled images' contrast, brightness, gamma, noise and blur
    #: train on random crop x crop windows of the frames (None: whole frames): the run's ``size`` can
    #: then stay near the native resolution, where thin vessels survive, at a smaller step's cost;
    #: validation and prediction see whole frames.
    crop: int | None = None
    #: the unlabeled terms' ramp-up length in steps, for every method of a run (a method's own
    #: ``rampup_steps`` option overrides it); None: each method's default, the whole run (SSL4MIS's horizon)
    rampup_steps: int | None = None
    #: bfloat16 autocast, where the device computes in it natively (a GPU with bf16, a CPU with AVX-512 BF16
    #: or AMX); elsewhere the run stays fp32, since emulated bf16 is slower and not what was validated
    amp: bool = False
    compile: bool = False  # torch.compile the training step (GPU)
    #: NHWC weights and images: faster steps for the small U-Nets on a CPU (``bench/train_throughput.py``
    #: prints NHWC / NCHW; docs/benchmarks.md) and the layout tensor cores want under AMP.
    channels_last: bool = True


class ProgressSink(Protocol):
    """What the trainer calls on its progress display: a rich ``Progress``, or the relay of a worker
    process (``mosxav.harness.parallel.QueueProgress``)."""

    def add_task(self, description: str, total: float, completed: float = 0) -> Any: ...

    def update(self, task: Any, completed: float, description: str) -> None: ...


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA device that supports it, or a CPU with
    AVX-512 BF16 or AMX (``/proc/cpuinfo`` flags); on others autocast would emulate it, slower."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def batch_indices(
    n: int, batch: int, step: int, seed: int, stream: int, rank: int = 0, world_size: int = 1
) -> list[int]:
    """Indices of ``rank``'s share of ``step``'s global batch: epochs are seeded permutations, so any
    step can be recomputed, and the ranks' shares are disjoint slices of the same global batch."""
    out = []
    start = (step * world_size + rank) * batch
    for pos in range(start, start + batch):
        epoch, offset = divmod(pos, n)
        perm = np.random.default_rng([seed, stream, epoch]).permutation(n)
        out.append(int(perm[offset]))
    return out


def step_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit seed for one step of one rank."""
    return int(
        np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32).astype(np.uint64)
        @ np.array([1 << 31, 1], dtype=np.uint64)
    )


def _collate(dataset: Dataset, indices: list[int]) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def in_layout(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A 4-D image batch in the layout the trainer gave the weights: a convolution with an NCHW input
    and NHWC weights runs slower than either layout alone. Other tensors pass unchanged."""
    if channels_last and images.dim() == 4:
        return images.contiguous(memory_format=torch.channels_last)
    return images


@torch.no_grad()
def mean_dice(
    method: Method, dataset: Dataset, device: torch.device, batch: int = 8, channels_last: bool = False
) -> float:
    """Mean foreground Dice over the classes present, pooled over the set, at the training resolution."""
    was_training = method.training
    method.eval()
    classes = range(1, method.num_classes)
    inter = np.zeros(method.num_classes)
    total = np.zeros(method.num_classes)
    for start in range(0, len(dataset), batch):
        b = _collate(dataset, list(range(start, min(start + batch, len(dataset)))))
        pred = method.predict(in_layout(b["image"].to(device), channels_last)).argmax(1).cpu()
        for c in classes:
            p, g = pred == c, b["mask"] == c
            inter[c] += float((p & g).sum())
            total[c] += float(p.sum() + g.sum())
    method.train(was_training)
    present = [c for c in classes if total[c] > 0]
    return float(np.mean([2 * inter[c] / total[c] for c in present])) if present else float("nan")


def make_optimizer(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'sgd' or 'adamw'")


class Trainer:
    """Runs ``config.iterations`` optimiser steps of ``method`` and keeps the best validation weights."""

    def __init__(
        self,
        method: Method,
        labeled: Dataset,
        unlabeled: Dataset | None,
        val: Dataset | None,
        config: TrainConfig,
        out_dir: str | Path,
        seed: int = 0,
        device: str | torch.device = "cpu",
        progress: ProgressSink | None = None,
        dist: DistContext | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not len(labeled):
            raise ValueError("the labeled set is empty: nothing to train on")
        self.device = torch.device(device)
        self.method = method.to(self.device)
        if config.channels_last:
            self.method.to(memory_format=torch.channels_last)  # convolutions follow their weights' layout
        self.labeled, self.unlabeled, self.val = labeled, unlabeled, val
        self.config = config
        self.seed = seed
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.dist = dist or DistContext()
        self.optimizer = make_optimizer(method.trainable_parameters(), config)
        self.aug = torch.Generator()
        self.step = 0
        self.best = (-math.inf, -1)
        #: what the weights are trained with (options, schedule, data): stored in each checkpoint and
        #: compared on resume, so a run is never continued under other settings
        self.settings = dict(settings) if settings is not None else None
        #: bf16 only where the device has it natively (``train.amp`` on a CPU without it trains in fp32)
        self.amp = config.amp and native_bf16(self.device)
        self.step_fn = self._wrap(method)

    def _wrap(self, method: Method):
        module: torch.nn.Module = method
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(
                method, device_ids=ids, find_unused_parameters=method.find_unused_parameters
            )
        if self.config.compile:
            # Every method shares Method.forward: without a reset, dynamo's per-code cache would count
            # each new method of a run as a recompilation and fall back to eager after eight.
            torch._dynamo.reset()
            targets = method.compile_targets()
            if targets is None:
                return torch.compile(module)
            for network in targets:
                network.compile()  # in place: parameters, state_dict keys and EMA copies stay as they are
        return module

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "last.pt"

    def save_checkpoint(self) -> None:
        if not self.dist.is_main:
            return
        state = {
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_score": self.best[0],
            "best_step": self.best[1],
            "config": asdict(self.config),
            "seed": self.seed,
            "world_size": self.dist.world_size,
            "settings": self.settings,
        }
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self) -> bool:
        if not self.checkpoint_path.is_file():
            return False
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        if self.settings is not None:
            check_settings(self.checkpoint_path, state.get("settings"), self.settings)
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.best = (float(state["best_score"]), int(state["best_step"]))
        self._forget_log_after(self.step)
        return True

    def _forget_log_after(self, step: int) -> None:
        """Drop the log's records of steps after ``step``: a resumed run trains them again, and their
        first records were made by weights the checkpoint no longer holds."""
        path = self.out_dir / "metrics.jsonl"
        if not self.dist.is_main or not path.is_file():
            return
        kept = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] <= step]
        with atomic_path(path) as tmp:
            Path(tmp).write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def _lr(self) -> float:
        return self.config.lr * (1 - self.step / self.config.iterations) ** 0.9

    def _batches(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """This step's labeled (and unlabeled) batch, augmented on the training device: on a GPU, the
        per-sample rotations on the CPU were half of a supervised step (docs/gpu.md, gpu_check)."""
        c, d = self.config, self.dist
        degrees = 20.0 if c.rotate else 0.0
        labeled_indices = batch_indices(len(self.labeled), c.batch_size, self.step, self.seed, 0, d.rank, d.world_size)
        lab = weak_augment(self._to_device(self._crop(_collate(self.labeled, labeled_indices))), self.aug, degrees)
        if c.intensity:
            lab["image"] = photometric_augment(lab["image"], self.aug).clamp(0, 1)
        unl = None
        if self.method.unlabeled_active() and self.unlabeled is not None and len(self.unlabeled):
            unlabeled_indices = batch_indices(
                len(self.unlabeled), c.unlabeled_batch_size, self.step, self.seed, 1, d.rank, d.world_size
            )
            raw = self._to_device(self._crop(_collate(self.unlabeled, unlabeled_indices)))
            weak = weak_augment(raw, self.aug, degrees)["image"]
            unl = {"weak": weak, "strong": strong_augment(weak, self.aug)}
        return self._in_layout(lab), (self._in_layout(unl) if unl else None)

    def _crop(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return batch if self.config.crop is None else random_crop(batch, self.aug, self.config.crop)

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _in_layout(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Images in the weights' layout (masks are 3-D and stay as they are)."""
        return {k: in_layout(v, self.config.channels_last) for k, v in batch.items()}

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _validate(self) -> None:
        """Every rank holds the same weights, so rank 0 alone scores and keeps the best."""
        if self.val is None or not len(self.val) or not self.dist.is_main:
            return
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            score = mean_dice(self.method, self.val, self.device, channels_last=self.config.channels_last)
        self._log({"step": self.step, "val_dice": score})
        if score > self.best[0]:
            self.best = (score, self.step)
            with atomic_path(self.out_dir / "best.pt") as tmp:
                torch.save(self.method.state_dict(), tmp)

    def _train_step(self) -> tuple[torch.Tensor, dict[str, float]]:
        seed = step_seed(self.seed, self.dist.rank, self.step)
        self.aug.manual_seed(seed)
        torch.manual_seed(seed)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        labeled, unlabeled = self._batches()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss, logs = self.step_fn(labeled, unlabeled, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.method.after_step(self.step)
        self.step += 1
        return loss, logs

    def fit(self, stop_after: int | None = None) -> Method:
        """Train (resuming from ``last.pt`` if present); ``stop_after`` simulates a kill for tests."""
        self.load_checkpoint()
        self.method.train()
        task = None
        if self.progress is not None and self.dist.is_main:
            task = self.progress.add_task(self.out_dir.name, total=self.config.iterations, completed=self.step)
        tick, done_at_tick = time.perf_counter(), self.step
        while self.step < self.config.iterations:
            if stop_after is not None and self.step >= stop_after:
                return self.method
            loss, logs = self._train_step()
            if self.step % self.config.log_every == 0 or self.step == self.config.iterations:
                elapsed = time.perf_counter() - tick
                fps = (self.step - done_at_tick) * self.config.batch_size * self.dist.world_size / max(elapsed, 1e-9)
                tick, done_at_tick = time.perf_counter(), self.step
                self._log({"step": self.step, "loss": loss.item(), "lr": self._lr(), "frames_per_s": fps, **logs})
                if task is not None:
                    self.progress.update(
                        task,
                        completed=self.step,
                        description=f"{self.out_dir.name} loss {loss.item():.3f} {fps:.1f} fr/s",
                    )
            if self.step % self.config.val_every == 0 or self.step == self.config.iterations:
                self._validate()
            if self.step % self.config.checkpoint_every == 0 or self.step == self.config.iterations:
                self.save_checkpoint()
        barrier(self.dist)
        if self.dist.is_main:
            summary = training_summary(self.out_dir / "metrics.jsonl", self.best)
            with atomic_path(self.out_dir / "training.json") as tmp:
                Path(tmp).write_text(json.dumps(summary, indent=1), encoding="utf-8")
        best = self.out_dir / "best.pt"
        if best.is_file():
            self.method.load_state_dict(torch.load(best, map_location=self.device, weights_only=True))
        self.method.eval()
        return self.method


#: The share of a run counted as its end, for the unlabeled share "at the end".
END_SHARE = 0.1


def training_summary(log: Path, best: tuple[float, int]) -> dict[str, float | int | None]:
    """What a cell's training did, from its log: the best validation score and its step, and the
    unlabeled share of the loss (Σ weighted unlabeled terms / Σ weighted labeled + unlabeled terms, from
    the methods' ``loss_parts``, sampled every ``log_every`` steps) over the run and over its last tenth.
    None where the method logs no parts."""
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.is_file() else []
    steps = [r for r in records if "loss_labeled" in r]
    summary: dict[str, float | int | None] = {
        "best_val_dice": None if math.isinf(best[0]) else float(best[0]),
        "best_step": int(best[1]),
        "unlabeled_share_run": None,
        "unlabeled_share_end": None,
    }
    if not steps:
        return summary
    last = max(r["step"] for r in steps)

    def share(rows: list[dict]) -> float:
        unlabeled = sum(abs(r["loss_unlabeled"]) for r in rows)
        total = unlabeled + sum(abs(r["loss_labeled"]) for r in rows)
        return unlabeled / total if total > 0 else 0.0

    summary["unlabeled_share_run"] = share(steps)
    summary["unlabeled_share_end"] = share([r for r in steps if r["step"] > last * (1 - END_SHARE)] or steps[-1:])
    return summary


def settings_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two nested mappings."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            found += settings_differences(old.get(key, "(absent)"), new.get(key, "(absent)"), name)
        return found
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def check_settings(path: Path, stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> None:
    """Refuse to resume ``path`` when it was trained with other settings than ``current``: one line
    naming the checkpoint and the keys that differ."""
    if stored is None:
        raise StaleCheckpoint(path, "records no training settings (an older version wrote it)")
    differences = settings_differences(stored, current)
    if differences:
        shown = "; ".join(differences[:4]) + (f" and {len(differences) - 4} more" if len(differences) > 4 else "")
        raise StaleCheckpoint(path, f"trained with other settings ({shown})")


class StaleCheckpoint(DataError):
    """A checkpoint the run would resume was trained with other settings."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(path, f"{problem}: run again with --restart to train these cells anew, or use another --out")


def progress_bar() -> Progress:
    """Bars on a terminal; where output is not one (a log) they would print only at the end, so they are
    off there and the run's event lines (``mosxav.harness.events``) carry its progress."""
    console = Console()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
