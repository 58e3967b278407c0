"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node=2``: a few DDP steps of the
shared trainer on random frames, then each rank saves its weights and the batches it drew; or, with
the method name ``prototypes``, DiffProto's prototype update on each rank's half of a global batch."""

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


def prototype_batches(steps: int = 2, pixels: int = 64, dim: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The global batches of embeddings and labels both the ranks and the single-process reference use
    (class 2 only on the second rank's half: rank 0 alone never sees it)."""
    g = torch.Generator().manual_seed(5)
    batches = []
    for _ in range(steps):
        embeddings = torch.nn.functional.normalize(torch.randn(pixels, dim, generator=g), dim=1)
        labels = torch.randint(0, 2, (pixels,), generator=g)
        labels[pixels // 2 + pixels // 4 :] = 2
        batches.append((embeddings, labels))
    return batches


def update_prototypes(out: Path) -> None:
    from mosxav_diffproto.prototypes import ClassPrototypes

    dist = init_distributed()
    prototypes = ClassPrototypes(3, 8, momentum=0.9)
    for embeddings, labels in prototype_batches():
        half = embeddings.shape[0] // dist.world_size
        rows = slice(dist.rank * half, (dist.rank + 1) * half)
        prototypes.update(embeddings[rows], labels[rows])
    torch.save(prototypes.state_dict(), out / f"prototypes{dist.rank}.pt")
    torch.distributed.destroy_process_group()


def main(out: Path, method_name: str) -> None:
    if method_name == "prototypes":
        update_prototypes(out)
        return
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
