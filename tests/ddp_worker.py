"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node=2``: a few DDP steps of the
shared trainer on random frames, then each rank saves its weights and the batches it drew."""

import json
import sys
from pathlib import Path

import torch

from mosxav.training.distributed import init_distributed
from mosxav.training.protocol import get_method
from mosxav.training.trainer import TrainConfig, Trainer, batch_indices


class RandomFrames(torch.utils.data.Dataset):
    def __init__(self, n: int, size: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 1, size, size, generator=g)
        self.masks = (self.images[:, 0] > 0.7).long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "mask": self.masks[i]}


def main(out: Path, method_name: str) -> None:
    dist = init_distributed()
    torch.manual_seed(0)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    method = get_method(method_name)({"width": 4, "depth": 2, "iterations": 4}, 2)
    data = RandomFrames(16, 16)
    config = TrainConfig(
        iterations=4,
        batch_size=2,
        unlabeled_batch_size=2,
        lr=0.01,
        optimizer="sgd",
        checkpoint_every=2,
        val_every=4,
        log_every=1,
    )
    Trainer(method, data, RandomFrames(16, 16), data, config, out / "work", dist=dist).fit()
    torch.save(method.state_dict(), out / f"rank{dist.rank}.pt")
    drawn = [batch_indices(16, 2, s, 0, 0, dist.rank, dist.world_size) for s in range(4)]
    (out / f"rank{dist.rank}.json").write_text(json.dumps({"world_size": dist.world_size, "batches": drawn}))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
