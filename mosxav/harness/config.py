"""The run config of ``mosxav-bench run``: one typed schema, its defaults the quick run.

A YAML file names only what it changes; every key at every depth is checked against ``RunConfig``
(and ``method_options.<method>`` against that method's ``Options``), so a typo is one error naming
the key, the file and the keys known there. Every key replaces the default's; a method's own
defaults live in its ``Options`` alone.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mosxav.data.files import read_yaml
from mosxav.data.synth.writer import SynthConfig
from mosxav.harness.predict import PredictConfig
from mosxav.schema import ConfigError, from_mapping, to_mapping
from mosxav.training.network_input import InputConfig
from mosxav.training.protocol import BackboneOptions, Method, available_methods, get_method
from mosxav.training.trainer import TrainConfig

#: Keys of a method's options that the harness sets itself (from ``train`` and the noise axis).
HARNESS_SET_OPTIONS = ("iterations", "pseudo_label_noise_rate")


@dataclass(frozen=True)
class DatasetSpec:
    """``dataset:``: a named dataset, a MOSXAV root, or folders of ``N.png`` + ``N_gt.png`` pairs."""

    type: Literal["mosxav", "pairs"] = "mosxav"
    name: str = "mosxav-synthetic"  # resolved by mosxav.data.named.resolve_root when no root is given
    root: str | None = None
    train: str | None = None  # pairs: the training folder
    test: str | None = None  # pairs: the test folder (may equal train with disjoint ids)
    train_ids: list[int | str] | None = None
    test_ids: list[int | str] | None = None
    val_fraction: float = 0.2  # pairs: held out of training to choose the best checkpoint
    #: pairs: k-fold cross-validation over the ``train`` images (``train_ids`` or all): every image is
    #: tested exactly once, by the model trained on the other folds (its checkpoint chosen on a
    #: ``val_fraction`` of those, never on the test fold). No ``test``/``test_ids`` then.
    folds: int | None = None
    fold_seed: int = 0  # the permutation that deals the images into folds
    only_folds: list[int] | None = None  # run these folds only (a CPU-sized first look; not a full CV)
    #: a synthetic MOSXAV of these settings (``mosxav-bench synth``'s), generated into the cache on first
    #: use: a study's own data, reproducible from its config alone (instead of ``name``/``root``)
    synth: SynthConfig | None = None


@dataclass(frozen=True)
class VariantSpec:
    """``variants.<name>``: a registered method run under another name with other options.

    An ablation arm (``diffproto_coupled: {method: diffproto, options: {detach_condition: false}}``) is a
    method of the run like any other: its own cells, rows, plots and leaderboard entries, trained on
    the same partitions and seeds as the method it varies, so the two can be compared pair by pair.
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)  # over method_options.<method>


@dataclass(frozen=True)
class RunConfig:
    """Methods x labeled fractions x label-noise rates x seeds, trained and scored the same way."""

    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    size: int = 128  # training and prediction resolution (snapped to the U-Net's stride)
    scale: float = 1.0  # multiplies size and train.iterations (0.25 rehearses the paper config on a CPU)
    device: str = "auto"
    methods: list[str] = field(
        default_factory=lambda: ["tophat_otsu", "supervised", "fully_supervised", "mean_teacher", "cps", "diffproto"]
    )
    #: 5 % of the default's 30 annotated training frames is one: where every label still adds a lot, so
    #: the run's positive control (fully_supervised - supervised) is detected
    labeled_fractions: list[float] = field(default_factory=lambda: [0.05])
    label_noise_rates: list[float] = field(default_factory=lambda: [0.0])
    #: where the label-noise rate applies: the labeled set's masks, the hard pseudo-labels, or both
    label_noise_applies_to: list[Literal["labeled", "pseudo_labels"]] = field(default_factory=lambda: ["labeled"])
    seeds: list[int] = field(default_factory=lambda: [0])
    train: TrainConfig = field(default_factory=TrainConfig)
    input: InputConfig = field(default_factory=InputConfig)  # grey levels or local contrast, for trained methods
    model: BackboneOptions = field(default_factory=BackboneOptions)
    predict: PredictConfig = field(default_factory=PredictConfig)  # test-time flips, speck removal
    #: the default: the labeled frames apart from the unlabeled ones in the forward, as the semi-supervised
    #: study (configs/ssl.yaml) runs them (the references' joint forward collapses at one labeled frame)
    method_options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {name: {"joint_forward": False} for name in ("mean_teacher", "cps", "diffproto")}
    )
    variants: dict[str, VariantSpec] = field(default_factory=dict)  # named ablation arms usable in ``methods``
    overlays: int = 6  # test frames in overlays.png
    leaderboard: bool = True  # enter the clean-label cells into a leaderboard as reference runs
    #: that leaderboard: None = ``leaderboard.sqlite`` inside the run folder (a run's own table); a path or
    #: database URL (``$MOSXAV_HOME/leaderboard/leaderboard.sqlite`` is the CLI's) to add them to a shared one
    leaderboard_db: str | None = None

    def method_class(self, name: str) -> type[Method]:
        """The class that runs ``name``: a registered method, or the method a variant varies."""
        variant = self.variants.get(name)
        return get_method(variant.method if variant else name)

    def options_for(self, name: str) -> dict[str, Any]:
        """``name``'s option values: those of the method it inherits from (``Method.options_from``), its
        own ``method_options`` over them, and a variant's options over those."""
        variant = self.variants.get(name)
        method = variant.method if variant else name
        inherited = get_method(method).options_from
        values = dict(self.method_options.get(inherited, {})) if inherited else {}
        values.update(self.method_options.get(method, {}))
        if variant is not None:
            values.update(variant.options)
        return values

    def effective_size(self) -> int:
        """``size`` times ``scale``, snapped to a multiple of the U-Net's stride 2**depth."""
        stride = 2**self.model.depth
        return max(stride, int(round(self.size * self.scale / stride)) * stride)

    @functools.cached_property
    def effective_train(self) -> TrainConfig:
        """``train`` with iterations times ``scale`` (and the intervals no longer than the run), a crop
        scaled and snapped like ``size``: resolved once per config, every user reads the same object."""
        iterations = max(1, int(round(self.train.iterations * self.scale)))
        rampup = self.train.rampup_steps
        if rampup is not None:
            rampup = max(1, int(round(rampup * self.scale)))
        crop = self.train.crop
        if crop is not None:
            stride = 2**self.model.depth
            crop = min(self.effective_size(), max(stride, int(round(crop * self.scale / stride)) * stride))
        return dataclasses.replace(
            self.train,
            iterations=iterations,
            rampup_steps=rampup,
            crop=crop,
            checkpoint_every=max(1, min(self.train.checkpoint_every, iterations)),
            val_every=max(1, min(self.train.val_every, iterations)),
            log_every=max(1, min(self.train.log_every, iterations)),
        )


def _check(config: RunConfig, source: str | Path) -> RunConfig:
    """What the types alone cannot say: registered methods, their options, sane numbers."""
    registered = available_methods()
    for name, variant in config.variants.items():
        if name in registered:
            raise ConfigError(source, f"variants.{name}", "is a registered method's name: choose another")
        if variant.method not in registered:
            problem = f"{variant.method!r} is not a registered method; known: {sorted(registered)}"
            raise ConfigError(source, f"variants.{name}.method", problem)
        for key in HARNESS_SET_OPTIONS:
            if key in variant.options:
                raise ConfigError(source, f"variants.{name}.options.{key}", "set by the harness")
        get_method(variant.method).make_options(config.options_for(name), str(source), f"variants.{name}.options")
    for k, name in enumerate(config.methods):
        if name not in registered and name not in config.variants:
            raise ConfigError(
                source,
                f"methods[{k}]",
                f"{name!r} is not a registered method nor a variant; known: {sorted(registered)}"
                + (f", variants {sorted(config.variants)}" if config.variants else ""),
            )
    for name, options in config.method_options.items():
        if name not in registered:
            raise ConfigError(source, f"method_options.{name}", f"not a registered method; known: {sorted(registered)}")
        for key in HARNESS_SET_OPTIONS:
            if key in options:
                raise ConfigError(
                    source, f"method_options.{name}.{key}", "set by the harness (train.iterations, label_noise_rates)"
                )
        get_method(name).make_options(options, str(source), f"method_options.{name}")
    rates = config.model.encoder_dropout
    if rates is not None and len(rates) != config.model.depth + 1:
        raise ConfigError(
            source,
            "model.encoder_dropout",
            f"{len(rates)} rates for depth {config.model.depth}: give one per encoder block",
        )
    if config.scale <= 0:
        raise ConfigError(source, "scale", f"must be positive, got {config.scale}")
    train = config.train
    for key in ("iterations", "batch_size", "unlabeled_batch_size", "checkpoint_every", "val_every", "log_every"):
        if getattr(train, key) <= 0:
            raise ConfigError(source, f"train.{key}", f"must be positive, got {getattr(train, key)}")
    for key in ("lr",):
        if not getattr(train, key) > 0:
            raise ConfigError(source, f"train.{key}", f"must be positive, got {getattr(train, key)}")
    for key in ("momentum", "weight_decay"):
        if getattr(train, key) < 0:
            raise ConfigError(source, f"train.{key}", f"must be 0 or more, got {getattr(train, key)}")
    if train.rampup_steps is not None and train.rampup_steps <= 0:
        raise ConfigError(source, "train.rampup_steps", f"must be positive, got {train.rampup_steps}")
    for key in ("width", "depth"):
        if getattr(config.model, key) <= 0:
            raise ConfigError(source, f"model.{key}", f"must be positive, got {getattr(config.model, key)}")
    if config.size <= 0:
        raise ConfigError(source, "size", f"must be positive, got {config.size}")
    if not config.seeds:
        raise ConfigError(source, "seeds", "needs at least one seed")
    if config.predict.min_component < 0:
        raise ConfigError(source, "predict.min_component", f"must be 0 or more, got {config.predict.min_component}")
    if config.input.sigma <= 0:
        raise ConfigError(source, "input.sigma", f"must be positive, got {config.input.sigma}")
    crop = config.train.crop
    if crop is not None and not 0 < crop <= config.size:
        raise ConfigError(source, "train.crop", f"{crop} must be positive and no larger than size ({config.size})")
    for k, fraction in enumerate(config.labeled_fractions):
        if not 0 <= fraction <= 1:
            raise ConfigError(source, f"labeled_fractions[{k}]", f"{fraction} is not in [0, 1]")
    for k, rate in enumerate(config.label_noise_rates):
        if not 0 <= rate <= 1:
            raise ConfigError(source, f"label_noise_rates[{k}]", f"{rate} is not in [0, 1]")
    dataset = config.dataset
    if dataset.only_folds is not None and dataset.folds is None:
        raise ConfigError(source, "dataset.only_folds", "needs dataset.folds")
    if dataset.folds is not None:
        if dataset.type != "pairs":
            raise ConfigError(
                source, "dataset.folds", "cross-validation is for pairs folders; MOSXAV has official splits"
            )
        if dataset.folds < 2:
            raise ConfigError(source, "dataset.folds", f"needs at least 2 folds, got {dataset.folds}")
        if dataset.train is None:
            raise ConfigError(source, "dataset.train", "cross-validation needs the folder of N.png + N_gt.png")
        for k, fold in enumerate(dataset.only_folds or []):
            if not 0 <= fold < dataset.folds:
                raise ConfigError(source, f"dataset.only_folds[{k}]", f"fold {fold} is not in 0..{dataset.folds - 1}")
        if dataset.test_ids is not None or (dataset.test is not None and dataset.test != dataset.train):
            raise ConfigError(source, "dataset.test", "with folds every train image is tested once: drop test/test_ids")
    elif dataset.synth is not None and (dataset.type != "mosxav" or dataset.root is not None):
        raise ConfigError(source, "dataset.synth", "generates a MOSXAV root: drop type: pairs and root")
    elif dataset.type == "pairs" and (dataset.train is None or dataset.test is None):
        raise ConfigError(source, "dataset", "a pairs dataset needs 'train' and 'test' folders of N.png + N_gt.png")
    return config


def parse_config(data: dict[str, Any] | None, source: str | Path = "<run config>") -> RunConfig:
    """A ``RunConfig`` from a mapping (as read from YAML), checked at every depth."""
    return _check(from_mapping(RunConfig, dict(data or {}), source), source)


def load_config(path: str | Path | None, scale: float | None = None) -> RunConfig:
    """The quick default, changed by a YAML file (read with ``yaml.safe_load``) and ``--scale``."""
    config = RunConfig() if path is None else parse_config(read_yaml(path, "config file"), path)
    if scale is not None:
        config = _check(dataclasses.replace(config, scale=scale), "--scale")
    return config


def config_yaml(config: RunConfig, world_size: int = 1) -> str:
    """The resolved config as YAML that ``--config`` reads back, with the effective settings as a comment."""
    import yaml

    train = config.effective_train
    header = (
        f"# effective: size {config.effective_size()} px, {train.iterations} iterations, world size {world_size}\n"
        "# (size and iterations below are before --scale)\n"
    )
    return header + yaml.safe_dump(to_mapping(config), sort_keys=False)
