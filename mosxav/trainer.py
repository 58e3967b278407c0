"""The one trainer every method shares: seeded, checkpointed with exact resume, logged, validated.

Determinism: the labeled/unlabeled batch indices of step s are a pure function of (seed, s), and the
augmentation generator's state is saved in every checkpoint, so a run killed and resumed from its
last checkpoint continues with the same batches and the same augmentations.
Checkpoints hold only tensors and plain types and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import Dataset

from .io import atomic_path
from .protocol import Method
from .training_data import strong_augment, weak_augment


@dataclass
class TrainConfig:
    iterations: int = 300
    batch_size: int = 4
    unlabeled_batch_size: int = 4
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 100
    val_every: int = 100
    log_every: int = 10


def batch_indices(n: int, batch: int, step: int, seed: int, stream: int) -> list[int]:
    """Indices of ``step``'s batch: epochs are seeded permutations, so any step can be recomputed."""
    out = []
    start = step * batch
    for pos in range(start, start + batch):
        epoch, offset = divmod(pos, n)
        perm = np.random.default_rng([seed, stream, epoch]).permutation(n)
        out.append(int(perm[offset]))
    return out


def _collate(dataset: Dataset, indices: list[int]) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


@torch.no_grad()
def mean_dice(method: Method, dataset: Dataset, device: torch.device, batch: int = 8) -> float:
    """Mean foreground Dice over the classes present, pooled over the set, at the training resolution."""
    method.eval()
    classes = range(1, method.num_classes)
    inter = np.zeros(method.num_classes)
    total = np.zeros(method.num_classes)
    for start in range(0, len(dataset), batch):
        b = _collate(dataset, list(range(start, min(start + batch, len(dataset)))))
        pred = method.predict(b["image"].to(device)).argmax(1).cpu()
        for c in classes:
            p, g = pred == c, b["mask"] == c
            inter[c] += float((p & g).sum())
            total[c] += float(p.sum() + g.sum())
    method.train()
    present = [c for c in classes if total[c] > 0]
    return float(np.mean([2 * inter[c] / total[c] for c in present])) if present else float("nan")


class Trainer:
    """Runs ``config.iterations`` optimiser steps of ``method`` and keeps the best validation weights."""

    def __init__(self, method: Method, labeled: Dataset, unlabeled: Dataset | None, val: Dataset | None,
                 config: TrainConfig, out_dir: str | Path, device: str | torch.device = "cpu", progress: Progress | None = None) -> None:
        self.method = method.to(device)
        self.labeled, self.unlabeled, self.val = labeled, unlabeled, val
        self.config = config
        self.out_dir = Path(out_dir)
        self.device = torch.device(device)
        self.progress = progress
        self.optimizer = torch.optim.SGD(method.trainable_parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.aug = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.best = (-math.inf, -1)

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "last.pt"

    def save_checkpoint(self) -> None:
        state = {"method": self.method.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                 "aug_rng": self.aug.get_state(), "torch_rng": torch.get_rng_state(),
                 "best_score": self.best[0], "best_step": self.best[1], "config": asdict(self.config)}
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self) -> bool:
        if not self.checkpoint_path.is_file():
            return False
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.aug.set_state(state["aug_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.best = (float(state["best_score"]), int(state["best_step"]))
        return True

    def _lr(self) -> float:
        return self.config.lr * (1 - self.step / self.config.iterations) ** 0.9

    def _batches(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        c = self.config
        lab = weak_augment(_collate(self.labeled, batch_indices(len(self.labeled), c.batch_size, self.step, c.seed, 0)), self.aug)
        unl = None
        if self.method.uses_unlabeled and self.unlabeled is not None and len(self.unlabeled):
            raw = _collate(self.unlabeled, batch_indices(len(self.unlabeled), c.unlabeled_batch_size, self.step, c.seed, 1))
            weak = weak_augment(raw, self.aug)["image"]
            unl = {"weak": weak, "strong": strong_augment(weak, self.aug)}
        move = lambda d: {k: v.to(self.device) for k, v in d.items()}  # noqa: E731
        return move(lab), (move(unl) if unl else None)

    def _log(self, record: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _validate(self) -> None:
        if self.val is None or not len(self.val):
            return
        score = mean_dice(self.method, self.val, self.device)
        self._log({"step": self.step, "val_dice": score})
        if score > self.best[0]:
            self.best = (score, self.step)
            with atomic_path(self.out_dir / "best.pt") as tmp:
                torch.save(self.method.state_dict(), tmp)

    def fit(self, stop_after: int | None = None) -> Method:
        """Train (resuming from ``last.pt`` if present); ``stop_after`` simulates a kill for tests."""
        torch.manual_seed(self.config.seed)
        self.load_checkpoint()
        self.method.train()
        task = self.progress.add_task(self.out_dir.name, total=self.config.iterations, completed=self.step) if self.progress else None
        tick = time.perf_counter()
        while self.step < self.config.iterations:
            if stop_after is not None and self.step >= stop_after:
                return self.method
            for group in self.optimizer.param_groups:
                group["lr"] = self._lr()
            labeled, unlabeled = self._batches()
            loss, logs = self.method.training_step(labeled, unlabeled, self.step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.method.after_step(self.step)
            self.step += 1
            if self.step % self.config.log_every == 0 or self.step == self.config.iterations:
                elapsed = time.perf_counter() - tick
                tick = time.perf_counter()
                fps = self.config.log_every * self.config.batch_size / max(elapsed, 1e-9)
                self._log({"step": self.step, "loss": loss.item(), "lr": self._lr(), "frames_per_s": fps, **logs})
                if task is not None:
                    self.progress.update(task, completed=self.step, description=f"{self.out_dir.name} loss {loss.item():.3f} {fps:.1f} fr/s")
            if self.step % self.config.val_every == 0 or self.step == self.config.iterations:
                self._validate()
            if self.step % self.config.checkpoint_every == 0 or self.step == self.config.iterations:
                self.save_checkpoint()
        best = self.out_dir / "best.pt"
        if best.is_file():
            self.method.load_state_dict(torch.load(best, map_location=self.device, weights_only=True))
        self.method.eval()
        return self.method


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn())
