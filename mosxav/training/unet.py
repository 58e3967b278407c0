"""The shared 2-D U-Net backbone (Ronneberger et al., MICCAI 2015) with configurable width, depth and
encoder dropout, and the EMA-teacher helpers every teacher-student method uses.

Against SSL4MIS's ``networks/unet.py`` ``UNet`` (the backbone of every 2-D reference here): the same
blocks (3x3 convolution, BatchNorm, LeakyReLU, twice; dropout between the two convolutions of each
encoder block at 0.05/0.1/0.2/0.3/0.5; channels 16-256), but up-sampling by a transposed convolution
(SSL4MIS: a 1x1 convolution and bilinear up-sampling) and a 1x1 output convolution (SSL4MIS: 3x3),
as Ronneberger's U-Net; convolutions before BatchNorm carry no bias (BatchNorm removes it)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from mosxav.training.protocol import BackboneOptions


def _block(cin: int, cout: int, dropout: float = 0.0) -> nn.Sequential:
    """Two 3x3 convolutions with BatchNorm and LeakyReLU; ``dropout`` > 0 drops activations between them."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.01, inplace=True),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.01, inplace=True),
    ]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net with ``depth`` down-sampling stages and ``width`` channels at full resolution.

    ``encoder_dropout`` gives one rate per encoder block (``depth + 1``; None or zeros for none).
    ``forward(x, return_features=True)`` also returns the last decoder features, which
    prototype- and contrastive methods build on.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 6,
        width: int = 16,
        depth: int = 4,
        encoder_dropout: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        rates = list(encoder_dropout) if encoder_dropout is not None else [0.0] * (depth + 1)
        if len(rates) != depth + 1:
            raise ValueError(
                f"encoder_dropout has {len(rates)} rates for a U-Net of depth {depth}: give {depth + 1}, one per "
                "encoder block (model.encoder_dropout)"
            )
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            [_block(in_channels, chans[0], rates[0])]
            + [_block(chans[i], chans[i + 1], rates[i + 1]) for i in range(depth)]
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
def ema_update(teacher: nn.Module, student: nn.Module, decay: float, step: int | None) -> None:
    """Exponential moving average of the parameters, with SSL4MIS's warm-up ``min(decay, 1 - 1/(step+1))``
    (``step`` None: the constant ``decay``, as BCP). Buffers (BatchNorm statistics) are copied: a teacher
    runs in training mode during training, on its batch's statistics, so they matter only when a method
    predicts with its teacher."""
    alpha = decay if step is None else min(decay, 1 - 1 / (step + 1))
    for t, s in zip(teacher.parameters(), student.parameters(), strict=False):
        t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=False):
        t.copy_(s)


def build_unet(options: BackboneOptions, num_classes: int, in_channels: int = 1) -> UNet:
    """The backbone from a method's options (``width``, ``depth``, ``encoder_dropout``): one signature for all."""
    return UNet(
        in_channels,
        num_classes,
        width=options.width,
        depth=options.depth,
        encoder_dropout=options.encoder_dropout_rates(),
    )
