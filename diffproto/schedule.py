"""The noise schedule and the DDIM sampler, kept apart from the network (as diffusers separates
scheduler and model): the network only ever sees ``(z_t, t, condition)``.

Labels live in ``[-1, 1]``: a one-hot map ``y`` becomes ``z0 = 2 y - 1``. Forward process
``q(z_t | z0) = N(sqrt(ab_t) z0, (1 - ab_t) I)`` with the cosine schedule of Nichol & Dhariwal (2021).
The network is x0-parameterised (it returns label logits), which suits segmentation (Wolleb et al.
2022; DiffRect 2024); the sampler turns x0 estimates into DDIM updates (Song et al., ICLR 2021).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def cosine_alphas_cumprod(steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """ab_t for t = 0..steps-1 (Nichol & Dhariwal, eq. 17), betas clipped at ``max_beta``."""
    x = torch.linspace(0, steps, steps + 1, dtype=torch.float64)
    f = torch.cos(((x / steps) + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(0, max_beta)
    return torch.cumprod(1 - betas, 0).float()


def linear_alphas_cumprod(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """ab_t of the DDPM linear schedule (Ho et al., 2020)."""
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


@dataclass
class NoiseSchedule:
    """Discrete-time Gaussian forward process over label maps."""

    train_steps: int = 1000
    kind: str = "cosine"

    def __post_init__(self) -> None:
        if self.train_steps < 1:
            raise ValueError("train_steps must be >= 1")
        if self.kind == "cosine":
            self.alphas_cumprod = cosine_alphas_cumprod(self.train_steps)
        elif self.kind == "linear":
            self.alphas_cumprod = linear_alphas_cumprod(self.train_steps)
        else:
            raise ValueError(f"unknown schedule {self.kind!r}; use 'cosine' or 'linear'")

    def _ab(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.alphas_cumprod.to(like.device)[t].view(-1, *([1] * (like.dim() - 1))).to(like.dtype)

    def add_noise(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample q(z_t | z0) with the given noise (t: one integer per sample)."""
        ab = self._ab(t, z0)
        return ab.sqrt() * z0 + (1 - ab).sqrt() * noise

    def sample_timesteps(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.randint(0, self.train_steps, (n,), device=device)


def labels_to_z0(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, H, W) class ids -> (N, C, H, W) in {-1, 1}."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float() * 2 - 1


def standard_normal(
    shape: tuple[int, ...], generator: torch.Generator | Sequence[torch.Generator] | None, device: torch.device | str
) -> torch.Tensor:
    """N(0, 1) noise of ``shape``, drawn on the CPU from ``generator`` (reproducible on any device); with
    one generator per sample, sample k's noise comes from generator k alone."""
    if generator is None:
        return torch.randn(shape, device=device)
    if isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator).to(device)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
    return torch.stack([torch.randn(shape[1:], generator=g) for g in generator]).to(device)


class DDIMSampler:
    """Deterministic (eta = 0) or stochastic DDIM over ``steps`` evenly spaced timesteps."""

    def __init__(self, schedule: NoiseSchedule, steps: int = 5, eta: float = 0.0) -> None:
        if not 1 <= steps <= schedule.train_steps:
            raise ValueError(f"steps must be in [1, {schedule.train_steps}], got {steps}")
        self.schedule = schedule
        self.steps = steps
        self.eta = eta

    def timesteps(self) -> list[int]:
        """Descending and unique, "trailing" spacing as in diffusers: T-1 (pure noise), then every T/steps
        steps, ending at T/steps - 1 (199 for 5 of 1000 steps), not at 0: the last call predicts x0 directly."""
        stride = self.schedule.train_steps / self.steps
        return sorted({int(round(self.schedule.train_steps - 1 - i * stride)) for i in range(self.steps)}, reverse=True)

    @torch.no_grad()
    def sample(
        self,
        denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        shape: tuple[int, ...],
        device: torch.device | str = "cpu",
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """Run the reverse process; ``denoise(z_t, t)`` returns label logits; returns the last logits.

        ``generator`` may be one generator per sample: each sample's noise is then its own, whatever
        batch it is sampled in.
        """
        ab_all = self.schedule.alphas_cumprod.to(device)
        z = standard_normal(shape, generator, device)
        logits = None
        times = self.timesteps()
        for i, t in enumerate(times):
            t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
            logits = denoise(z, t_batch)
            x0 = logits.softmax(1) * 2 - 1
            if i == len(times) - 1:
                break
            ab, ab_prev = ab_all[t], ab_all[times[i + 1]]
            eps = (z - ab.sqrt() * x0) / (1 - ab).clamp_min(1e-12).sqrt()
            sigma = self.eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp_min(0).sqrt()
            z = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp_min(0).sqrt() * eps
            if self.eta > 0:
                z = z + sigma * standard_normal(shape, generator, device)
        return logits
