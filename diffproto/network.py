"""The conditional label denoiser g(z_t, t, c(x)): a small U-Net over the noisy label map
concatenated with the segmenter's image features, with a sinusoidal timestep embedding added in
every block (as in DDPM). It returns clean-label logits (x0-parameterisation) and its last decoder
layer's pixel features; ``embed`` projects chosen pixels of those to L2-normalised embeddings for
the prototypes. Projecting only the sampled pixels (a few hundred per class), not the whole map,
keeps the projection head out of DDIM sampling and saves most of its cost in training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al.; DDPM); an odd ``dim`` gets a zero
    last column, as in diffusers."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    embedding = torch.cat([args.cos(), args.sin()], dim=1)
    return F.pad(embedding, (0, dim % 2))


def _groups(channels: int) -> int:
    """GroupNorm groups: up to 8, always a divisor of ``channels`` (any width works)."""
    return math.gcd(channels, 8)


class TimeBlock(nn.Module):
    """conv-norm-act x2 with the time embedding added between the convolutions."""

    def __init__(self, cin: int, cout: int, tdim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(_groups(cout), cout)
        self.time = nn.Linear(tdim, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = F.silu(self.norm2(self.conv2(h)))
        return h + self.skip(x)


class LabelDenoiser(nn.Module):
    """g(z_t, t, features) -> (label logits, last-layer pixel features); ``embed`` maps chosen pixels'
    features to unit embeddings of size ``embed_dim``."""

    def __init__(
        self, num_classes: int, cond_channels: int, width: int = 16, depth: int = 2, embed_dim: int = 32
    ) -> None:
        super().__init__()
        self.tdim = width * 4
        self.time_mlp = nn.Sequential(nn.Linear(width, self.tdim), nn.SiLU(), nn.Linear(self.tdim, self.tdim))
        chans = [width * 2**i for i in range(depth + 1)]
        self.stem = nn.Conv2d(num_classes + cond_channels, chans[0], 3, padding=1)
        self.down = nn.ModuleList([TimeBlock(chans[i], chans[i + 1], self.tdim) for i in range(depth)])
        self.mid = TimeBlock(chans[-1], chans[-1], self.tdim)
        self.up = nn.ModuleList(
            [TimeBlock(chans[i + 1] + chans[i], chans[i], self.tdim) for i in reversed(range(depth))]
        )
        self.first = TimeBlock(chans[0], chans[0], self.tdim)
        self.head = nn.Conv2d(chans[0], num_classes, 1)
        self.project = nn.Sequential(nn.Conv2d(chans[0], chans[0], 1), nn.SiLU(), nn.Conv2d(chans[0], embed_dim, 1))
        self.width = width
        self.depth = depth

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        temb = self.time_mlp(timestep_embedding(t, self.width))
        x = self.first(self.stem(torch.cat([z_t, cond], dim=1)), temb)
        skips = [x]
        for block in self.down:
            x = block(F.avg_pool2d(x, 2), temb)
            skips.append(x)
        x = self.mid(skips.pop(), temb)
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], dim=1), temb)
        return self.head(x), x

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """(P, C) pixel features -> (P, embed_dim) unit embeddings: the 1x1-conv projection head applied
        to those pixels alone (the same weights as convolving the map and picking them)."""
        first, act, second = self.project
        hidden = act(F.linear(pixels, first.weight.flatten(1), first.bias))
        return F.normalize(F.linear(hidden, second.weight.flatten(1), second.bias), dim=1)
