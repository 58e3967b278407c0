"""Pieces shared by the baselines: building the backbone from a config, and EMA teachers."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from .unet import UNet


def build_unet(config: dict[str, Any], num_classes: int, in_channels: int) -> UNet:
    return UNet(in_channels, num_classes, width=int(config.get("width", 16)), depth=int(config.get("depth", 4)),
                dropout=float(config.get("dropout", 0.0)))


def frozen_copy(model: nn.Module) -> nn.Module:
    """A teacher: same weights, no gradients."""
    teacher = copy.deepcopy(model)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float, step: int) -> None:
    """Exponential moving average of weights (buffers copied), with the usual warm-up min(decay, 1 - 1/(step+1))."""
    alpha = min(decay, 1 - 1 / (step + 1))
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)
