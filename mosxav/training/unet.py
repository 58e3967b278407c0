"""The shared 2-D U-Net backbone (Ronneberger et al., MICCAI 2015) with configurable width and depth,
and the EMA-teacher helpers every teacher-student method uses."""

from __future__ import annotations

import copy

import torch
from torch import nn

from mosxav.training.protocol import BackboneOptions


def _block(cin: int, cout: int, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.01, inplace=True),
    ]
    if dropout:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net with ``depth`` down-sampling stages and ``width`` channels at full resolution.

    ``forward(x, return_features=True)`` also returns the last decoder features, which
    prototype- and contrastive methods build on.
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 6, width: int = 16, depth: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            [_block(in_channels, chans[0])]
            + [_block(chans[i], chans[i + 1], dropout if i == depth - 1 else 0.0) for i in range(depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth))]
        )
        self.dec = nn.ModuleList([_block(2 * chans[i], chans[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], num_classes, 1)
        self.depth = depth
        self.feature_channels = chans[0]

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"input size {tuple(x.shape[-2:])} must be divisible by {2**self.depth}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec, strict=False):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        logits = self.head(x)
        return (logits, x) if return_features else logits


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
    for t, s in zip(teacher.parameters(), student.parameters(), strict=False):
        t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=False):
        t.copy_(s)


def build_unet(options: BackboneOptions, num_classes: int, in_channels: int = 1) -> UNet:
    """The backbone from a method's options (``width``, ``depth``, ``dropout``): one signature for all methods."""
    return UNet(in_channels, num_classes, width=options.width, depth=options.depth, dropout=options.dropout)
