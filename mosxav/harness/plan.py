"""A cell resolved once: its method class, typed options, effective training and input settings and
size, made from the run config before anything trains and handed to training, parallel runs and the
report, so no part of a run resolves the config again (and none can resolve it differently)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mosxav.harness.cells import Cell
from mosxav.harness.config import RunConfig
from mosxav.training.network_input import InputConfig
from mosxav.training.protocol import Method, MethodOptions
from mosxav.training.trainer import TrainConfig


@dataclass(frozen=True)
class CellPlan:
    """What one cell trains and predicts with."""

    cell: Cell
    method: type[Method]
    options: MethodOptions
    train: TrainConfig
    input: InputConfig
    size: int
    labeled_noise: float  # the label-noise rate applied to the labeled set (0 when the run aims it elsewhere)

    @property
    def tag(self) -> str:
        return self.cell.tag

    @property
    def trained(self) -> bool:
        return self.method.needs_training

    @property
    def cost(self) -> float:
        """Rough training cost, for the start order of parallel cells only."""
        return self.method.relative_step_cost * self.train.iterations if self.trained else 0.0


def method_options(config: RunConfig, cell: Cell) -> Any:
    """The cell's typed method options: backbone, the method's own options, and what the harness sets."""
    cls = config.method_class(cell.method)
    pseudo_rate = cell.label_noise if "pseudo_labels" in config.label_noise_applies_to else 0.0
    ramp = {} if config.effective_train.rampup_steps is None else {"rampup_steps": config.effective_train.rampup_steps}
    values = {
        **dataclasses.asdict(config.model),
        **ramp,
        **config.options_for(cell.method),
        "iterations": config.effective_train.iterations,
        "pseudo_label_noise_rate": pseudo_rate,
    }
    return cls.make_options(values, prefix=f"method_options.{cell.method}")


def method_input(config: RunConfig, cls: type[Method]) -> InputConfig:
    """What ``cls`` is fed: ``input`` for the networks the harness trains; a fixed pipeline (top-hat +
    Otsu) keeps the grey levels it is defined on (local contrast ruins its threshold: 0.71 -> 0.39 Dice on XCA)."""
    return config.input if cls.needs_training else InputConfig()


def plan_cell(config: RunConfig, cell: Cell) -> CellPlan:
    """Resolve ``cell`` against ``config`` (options checked: a typo fails here, before training)."""
    method = config.method_class(cell.method)
    return CellPlan(
        cell=cell,
        method=method,
        options=method_options(config, cell),
        train=config.effective_train,
        input=method_input(config, method),
        size=config.effective_size(),
        labeled_noise=cell.label_noise if "labeled" in config.label_noise_applies_to else 0.0,
    )
