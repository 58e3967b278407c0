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

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

import torch
from torch import nn

from mosxav.schema import from_mapping

ENTRY_POINT_GROUP = "mosxav.methods"


@dataclass(frozen=True)
class BackboneOptions:
    """The shared U-Net (``model:`` in a run config)."""

    width: int = 16
    depth: int = 4
    dropout: float = 0.0


@dataclass(frozen=True)
class MethodOptions(BackboneOptions):
    """Options every method has; a method subclasses this as its nested ``Options`` to add its own.

    ``iterations`` is filled in by the harness from ``train.iterations``: ramp-ups are fractions of it.
    """

    iterations: int = 1000
    rampup_steps: int | None = None  # consistency ramp-up length; None = 40 % of iterations (SSL4MIS)
    pseudo_label_noise_rate: float = 0.0  # mosxav.training.label_noise on hard pseudo-labels (noisy-label study)

    @property
    def rampup_length(self) -> int:
        if self.rampup_steps is not None:
            return self.rampup_steps
        return max(1, int(0.4 * self.iterations))


class Method(nn.Module):
    """Base class of every method; subclasses set ``name``, ``uses_unlabeled`` and ``Options``."""

    name: ClassVar[str] = "method"
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    uses_unlabeled: ClassVar[bool] = True
    needs_training: ClassVar[bool] = True  # False for fixed pipelines (thresholding) that the harness only evaluates
    fixed_labeled_fraction: ClassVar[float | None] = (
        None  # trains at this fraction whatever the run asks (upper bounds)
    )
    find_unused_parameters: ClassVar[bool] = False  # passed to DistributedDataParallel
    #: Seconds of one training step relative to the supervised U-Net's (measured at the quick default on
    #: 2 CPU cores); the harness starts the costliest cells first when it trains cells in parallel.
    relative_step_cost: ClassVar[float] = 1.0

    def __init__(
        self, options: MethodOptions | Mapping[str, Any] | None, num_classes: int, in_channels: int = 1
    ) -> None:
        super().__init__()
        self.options = self.make_options(options)
        self.num_classes = num_classes
        self.in_channels = in_channels

    @classmethod
    def make_options(cls, options: MethodOptions | Mapping[str, Any] | None, source: str = "", prefix: str = "") -> Any:
        """``cls.Options`` from a mapping (every key and type checked) or from another options object."""
        if isinstance(options, cls.Options):
            return options
        if isinstance(options, MethodOptions):
            options = dataclasses.asdict(options)
        return from_mapping(cls.Options, options, source or f"options of method {cls.name!r}", prefix)

    @property
    def pseudo_noise(self) -> float:
        return self.options.pseudo_label_noise_rate

    def training_step(
        self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def forward(
        self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
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

    def compile_targets(self) -> list[nn.Module] | None:
        """What ``train.compile`` compiles: None (the default) for the whole training step, or the
        networks to compile one by one. A step whose tensors take data-dependent shapes (sampled pixels,
        confidence masks) breaks the whole-step graph and recompiles as the shapes change; compiling
        only its networks keeps the compiled graphs static and the warm-up short."""
        return None


def available_methods() -> dict[str, EntryPoint]:
    """Registered methods by name (entry points, loaded lazily)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``; its ``Method.name`` must be the same name."""
    methods = available_methods()
    if name not in methods:
        raise ValueError(
            f"unknown method {name!r}; registered: {sorted(methods)} (entry-point group {ENTRY_POINT_GROUP!r})"
        )
    cls = methods[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"entry point {name!r} does not name a mosxav.training.Method subclass")
    if cls.name != name:
        raise TypeError(
            f"entry point {name!r} names {cls.__qualname__}, whose Method.name is {cls.name!r}: make them equal"
        )
    return cls
