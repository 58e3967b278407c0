"""The method protocol and registry: what a semi-supervised method is, and how the harness finds it.

A method is a class registered under the entry-point group ``mosxav.methods`` (so third parties plug
in without editing this repository). The shared trainer owns the loop, the optimiser, seeding,
checkpoints and logging; a method owns its networks and its loss:

* ``__init__(config, num_classes, in_channels)`` builds the networks;
* ``training_step(labeled, unlabeled, step)`` returns the scalar loss and a dict of numbers to log
  (``labeled`` = weak-augmented images + masks, ``unlabeled`` = weak/strong views or None);
* ``after_step(step)`` updates EMA teachers and the like;
* ``predict(images)`` returns class probabilities (N, C, H, W) for evaluation.

Randomness inside ``training_step`` must come from torch's global generator (the trainer reseeds
it every step) so that resume after a kill is exact.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import torch
from torch import nn

ENTRY_POINT_GROUP = "mosxav.methods"


class Method(nn.Module):
    """Base class of every method; subclasses set ``name`` and ``uses_unlabeled``."""

    name: str = "method"
    uses_unlabeled: bool = True
    needs_training: bool = True  # False for fixed pipelines (thresholding) that the harness only evaluates
    find_unused_parameters: bool = False  # passed to DistributedDataParallel

    def __init__(self, config: dict[str, Any], num_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.in_channels = in_channels
        #: rate of ``mosxav.label_noise`` corruption applied to hard pseudo-labels (the noisy-label study)
        self.pseudo_noise = float(config.get("pseudo_label_noise", 0.0))

    def training_step(self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def forward(self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The training step, as ``forward`` so that ``DistributedDataParallel`` can wrap a method."""
        return self.training_step(labeled, unlabeled, step)

    def after_step(self, step: int) -> None:
        """Called after each optimiser step (EMA updates)."""

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the optimiser updates (EMA teachers are excluded by keeping them frozen)."""
        return [p for p in self.parameters() if p.requires_grad]


def available_methods() -> dict[str, Any]:
    """Registered methods by name (entry points, loaded lazily)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_method(name: str) -> type[Method]:
    methods = available_methods()
    if name not in methods:
        raise ValueError(f"unknown method {name!r}; registered: {sorted(methods)} (entry-point group {ENTRY_POINT_GROUP!r})")
    cls = methods[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"entry point {name!r} does not name a mosxav.protocol.Method subclass")
    return cls
