"""``torch.distributed`` set-up for the trainer: nothing home-made, only what torchrun provides.

Under ``torchrun --nproc_per_node=K`` the environment holds RANK/WORLD_SIZE/LOCAL_RANK; the process
group is initialised with NCCL when CUDA is available and gloo otherwise. Outside torchrun every
helper degrades to the single-process case, so the same code path serves both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistContext:
    """Join the torchrun process group if the environment names one (idempotent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(ctx.local_rank)
    return ctx


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def resolve_device(name: str, ctx: DistContext) -> torch.device:
    """``auto`` = this rank's GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{ctx.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)
