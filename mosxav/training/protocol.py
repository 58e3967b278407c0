"""The method protocol and registry: what a semi-supervised method is, and how the harness finds it.

A method is a class registered under the entry-point group ``mosxav.methods`` (so third parties plug
in without editing this repository). The shared trainer owns the loop, the optimiser, seeding,
checkpoints and logging; a method owns its networks and its loss:

* ``__init__(options, num_classes, in_channels)`` builds the networks;
* ``training_step(labeled, unlabeled, step)`` returns the scalar loss and a dict of numbers to log
  (``labeled`` = weak-augmented images + masks, ``unlabeled`` = weak/strong views or None);
* ``after_step(step)`` updates EMA teachers and the like;
* ``predict(images)`` returns class probabilities (N, C, H, W) for evaluation, from the network
  ``options.predict_with`` names.

Randomness inside ``training_step`` must come from torch's global generator (the trainer reseeds
it every step) so that resume after a kill is exact.

Each method's module docstring is its reference card: the reference implementation and commit it
follows, every setting with the reference's value, and each remaining deviation with its reason and
the option that reverts it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from mosxav.schema import ConfigError, from_mapping
from mosxav.training.losses import SupervisedLoss, supervised_loss

ENTRY_POINT_GROUP = "mosxav.methods"


#: SSL4MIS's U-Net (``networks/unet.py``, ``UNet``): dropout after the first convolution of each
#: encoder block, growing with depth; none in the decoder.
SSL4MIS_ENCODER_DROPOUT = (0.05, 0.1, 0.2, 0.3, 0.5)


def reference_encoder_dropout(depth: int) -> tuple[float, ...]:
    """SSL4MIS's encoder dropout for a U-Net of ``depth`` stages: exactly its rates at depth 4; at another
    depth the deepest block keeps 0.5 and the shallower ones take 0.05, 0.1, 0.2, 0.3 from the top
    (cut short, or the 0.3 repeated)."""
    shallow = list(SSL4MIS_ENCODER_DROPOUT[:-1])
    shallow += [shallow[-1]] * max(0, depth - len(shallow))
    return (*shallow[:depth], SSL4MIS_ENCODER_DROPOUT[-1])


#: An option's range follows from its name, for the built-in methods and any plugin's: shares and
#: probabilities in [0, 1], weights and temperatures above or at 0, sizes and step counts above 0.
UNIT_RANGE_SUFFIXES = ("_rate", "_threshold", "_momentum", "_decay", "_probability", "_fraction", "_ratio", "_t")
UNIT_RANGE_NAMES = ("alpha", "consistency_start", "eta", "rectify_t", "prototype_t_min")
NON_NEGATIVE_SUFFIXES = ("_weight",)
NON_NEGATIVE_NAMES = ("consistency", "temperature")
POSITIVE_SUFFIXES = ("_steps", "_samples", "_per_class", "_dim", "_width", "_depth")
POSITIVE_NAMES = ("width", "depth", "iterations")


class OptionRangeError(ValueError):
    """An option's value lies outside the range its name promises (one line naming the option)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


def check_ranges(options: Any) -> None:
    """Refuse option values outside the range their names promise (``UNIT_RANGE_SUFFIXES`` and the
    rest): a negative step count or a weight of -1 would train a cell that means nothing."""
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name = field.name
        if name in UNIT_RANGE_NAMES or name.endswith(UNIT_RANGE_SUFFIXES):
            if not 0 <= value <= 1:
                raise OptionRangeError(name, f"{value!r} is not in [0, 1]")
        elif name in NON_NEGATIVE_NAMES or name.endswith(NON_NEGATIVE_SUFFIXES):
            if value < 0:
                raise OptionRangeError(name, f"{value!r} must be 0 or more")
        elif name in POSITIVE_NAMES or name.endswith(POSITIVE_SUFFIXES):
            if value <= 0:
                raise OptionRangeError(name, f"{value!r} must be positive")


@dataclass(frozen=True)
class BackboneOptions:
    """The shared U-Net (``model:`` in a run config); the defaults are SSL4MIS's 2-D U-Net: 16 channels at
    full resolution, 4 down-sampling stages, encoder dropout ``SSL4MIS_ENCODER_DROPOUT``."""

    width: int = 16
    depth: int = 4
    #: one rate per encoder block (``depth + 1`` of them), applied between its two convolutions; None =
    #: ``reference_encoder_dropout(depth)`` (SSL4MIS's); zeros for none
    encoder_dropout: tuple[float, ...] | None = None

    def encoder_dropout_rates(self) -> tuple[float, ...]:
        """The rates the U-Net is built with."""
        if self.encoder_dropout is None:
            return reference_encoder_dropout(self.depth)
        return tuple(self.encoder_dropout)


@dataclass(frozen=True)
class MethodOptions(BackboneOptions):
    """Options every method has; a method subclasses this as its nested ``Options`` to add its own.

    ``iterations`` is filled in by the harness from ``train.iterations``: ramp-ups are fractions of it.
    """

    iterations: int = 1000
    #: consistency ramp-up length in steps; None = the whole run, the references' horizon: SSL4MIS and
    #: DiffRect ramp ``sigmoid_rampup(iter_num // 150, 200)`` over their 30,000 iterations, the original
    #: UA-MT ``sigmoid_rampup(iter_num // 150, 40)`` over its 6,000
    rampup_steps: int | None = None
    pseudo_label_noise_rate: float = 0.0  # mosxav.training.label_noise on hard pseudo-labels (noisy-label study)
    supervised_loss: SupervisedLoss = "ssl4mis"  # mosxav.training.losses.SupervisedLoss
    #: the network ``predict`` uses; methods with more than one network widen the choice
    predict_with: Literal["network"] = "network"

    def __post_init__(self) -> None:
        check_ranges(self)

    @property
    def rampup_length(self) -> int:
        if self.rampup_steps is not None:
            return self.rampup_steps
        return max(1, self.iterations)


class Method(nn.Module):
    """Base class of every method; subclasses set ``name``, ``uses_unlabeled`` and ``Options``.

    The trainer owns the loop, the optimiser, the schedule and DDP; a method owns its networks and
    its losses. It is built once per cell as ``Method(options, num_classes, in_channels)``.

    Args:
        options: ``Options``, or a mapping of its fields (every key and type checked; a typo is an
            error naming the key).
        num_classes: classes of the label maps (6 for MOSXAV: background and five structures).
        in_channels: channels of the network input (1: grey frames, what the harness feeds).
    """

    name: ClassVar[str] = "method"
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    uses_unlabeled: ClassVar[bool] = True
    needs_training: ClassVar[bool] = True  # False for fixed pipelines (thresholding) that the harness only evaluates
    fixed_labeled_fraction: ClassVar[float | None] = (
        None  # trains at this fraction whatever the run asks (upper bounds)
    )
    find_unused_parameters: ClassVar[bool] = False  # passed to DistributedDataParallel
    #: True for methods that train on hard pseudo-labels (``pseudo_label_noise_rate`` corrupts them)
    uses_pseudo_labels: ClassVar[bool] = False
    #: a registered method whose ``method_options`` this one inherits (an ablation of that method)
    options_from: ClassVar[str | None] = None
    #: The option values that set every unlabeled term's weight to 0. With them a method trains on its
    #: labeled frames alone (``unlabeled_active`` is False: the trainer gives it no unlabeled batch) and
    #: must score as ``supervised`` does: the zero-weight contract (tests/test_methods.py).
    zero_unlabeled: ClassVar[Mapping[str, Any]] = {}
    #: Seconds of one training step relative to the supervised U-Net's (``bench/train_throughput.py``);
    #: the harness starts the costliest cells first when it trains cells in parallel.
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
        where = source or f"options of method {cls.name!r}"
        try:
            return from_mapping(cls.Options, options, where, prefix)
        except OptionRangeError as bad:
            raise ConfigError(where, f"{prefix}.{bad.key}" if prefix else bad.key, bad.problem) from None

    def unlabeled_active(self) -> bool:
        """Whether unlabeled frames reach the training step: not for a method that uses none, nor for one
        whose options hold every ``zero_unlabeled`` value (its unlabeled weights are 0)."""
        if not self.uses_unlabeled:
            return False
        if not self.zero_unlabeled:
            return True
        return not all(getattr(self.options, key) == value for key, value in self.zero_unlabeled.items())

    @property
    def pseudo_noise(self) -> float:
        return self.options.pseudo_label_noise_rate

    def supervised(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The supervised term every method shares (``options.supervised_loss``)."""
        return supervised_loss(logits, masks, self.options.supervised_loss)

    def training_step(
        self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """One step's loss.

        Args:
            labeled: ``image`` (B, C, H, W) in [0, 1], augmented, and ``mask`` (B, H, W) class ids
                (label noise already applied when the run asks for it).
            unlabeled: ``weak`` (B, C, H, W), a weakly augmented view, and ``strong``, a strong
                augmentation of that view; None for methods with ``uses_unlabeled = False``.
            step: the optimiser step, from 0 (ramp-ups and schedules read it).

        Returns:
            the scalar loss to back-propagate, and the named figures to log (floats).
        """
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
        """Class probabilities of a batch, for validation and the scored predictions.

        Args:
            images: (B, C, H, W) in [0, 1], as ``labeled["image"]`` but never augmented.

        Returns:
            (B, num_classes, H, W) probabilities (the harness takes their argmax, or averages them
            over flips first).
        """
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


def loss_parts(labeled: torch.Tensor | float, unlabeled: torch.Tensor | float = 0.0) -> dict[str, float]:
    """The figures every method logs of its loss: the weighted labeled terms and the weighted unlabeled
    terms acting on the network it predicts with (as they enter the returned loss). The trainer sums
    them into the cell's unlabeled share (``training.json``): how much the unlabeled frames act."""

    def value(part: torch.Tensor | float) -> float:
        return float(part.detach()) if isinstance(part, torch.Tensor) else float(part)

    return {"loss_labeled": value(labeled), "loss_unlabeled": value(unlabeled)}


class MethodRegistrationError(ValueError):
    """An installed package registers a method wrongly (not a ``Method``, or under another name)."""


@functools.cache
def _registered() -> tuple[EntryPoint, ...]:
    """The entry points of the method group, scanned once per process (a scan reads every installed
    distribution's metadata; a run asks for method classes at many places)."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def available_methods() -> dict[str, EntryPoint]:
    """Registered methods by name (entry points, loaded lazily)."""
    return {ep.name: ep for ep in _registered()}


#: The distribution that ships the built-in methods (a method from any other is a plugin).
BUILT_IN_DISTRIBUTION = "mosxav-bench"


@dataclass(frozen=True)
class MethodInfo:
    """What ``mosxav-bench methods`` shows of a registered method."""

    name: str
    target: str  # module:Class of the entry point
    distribution: str  # the installed package that registers it
    uses_unlabeled: bool
    options: dict[str, Any]  # every option with its default (the backbone's and the harness's included)
    own_options: tuple[str, ...]  # the options the method adds to ``MethodOptions``
    zero_unlabeled: dict[str, Any]

    @property
    def built_in(self) -> bool:
        return self.distribution == BUILT_IN_DISTRIBUTION


def method_info(name: str) -> MethodInfo:
    """The registered method ``name`` described: where it comes from and its options with their defaults."""
    cls = get_method(name)
    entry = available_methods()[name]
    dist = getattr(entry, "dist", None)
    defaults = cls.make_options({})
    shared = {f.name for f in dataclasses.fields(MethodOptions)}
    return MethodInfo(
        name=name,
        target=entry.value,
        distribution=dist.name if dist is not None else "?",
        uses_unlabeled=cls.uses_unlabeled,
        options=dataclasses.asdict(defaults),
        own_options=tuple(f.name for f in dataclasses.fields(defaults) if f.name not in shared),
        zero_unlabeled=dict(cls.zero_unlabeled),
    )


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``; its ``Method.name`` must be the same name.

    Raises:
        ValueError: no method is registered as ``name``.
        MethodRegistrationError: the entry point names something else than a ``Method`` of that name.
    """
    methods = available_methods()
    if name not in methods:
        raise ValueError(
            f"unknown method {name!r}; registered: {sorted(methods)} (entry-point group {ENTRY_POINT_GROUP!r})"
        )
    cls = methods[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise MethodRegistrationError(f"entry point {name!r} does not name a mosxav.training.Method subclass")
    if cls.name != name:
        raise MethodRegistrationError(
            f"entry point {name!r} names {cls.__qualname__}, whose Method.name is {cls.name!r}: make them equal"
        )
    return cls
