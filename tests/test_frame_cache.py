"""FrameTensors prepares each frame once and serves it from memory within a byte budget, unchanged."""

import numpy as np
import torch

from mosxav.training.batches import FrameTensors
from mosxav.training.network_input import InputConfig

LOCAL = InputConfig(contrast="local", sigma=0.06)


class CountingItems:
    """Frames of random grey levels and masks with ids 0-5; counts how often each is decoded."""

    def __init__(self, count: int, side: int = 48) -> None:
        rng = np.random.default_rng(0)
        self.frames = [rng.integers(0, 256, (side, side), dtype=np.uint8) for _ in range(count)]
        self.masks = [rng.integers(0, 6, (side, side), dtype=np.uint8) for _ in range(count)]
        self.reads = [0] * count

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        self.reads[index] += 1
        return {"image": self.frames[index], "semantic": self.masks[index], "sequence": "s", "frame": f"{index:05d}"}


def test_a_cached_frame_equals_a_freshly_prepared_one_with_noise_and_local_contrast():
    items = CountingItems(4)
    cached = FrameTensors(items, range(4), 32, True, label_noise=0.3, noise_seed=1, input_config=LOCAL)
    first = [cached[i] for i in range(4)]
    again = [cached[i] for i in range(4)]
    fresh = FrameTensors(items, range(4), 32, True, label_noise=0.3, noise_seed=1, input_config=LOCAL, cache_bytes=0)
    for a, b, c in zip(first, again, (fresh[i] for i in range(4)), strict=True):
        assert torch.equal(a["image"], c["image"]) and torch.equal(b["image"], c["image"])
        assert a["mask"].dtype == torch.int64
        assert torch.equal(a["mask"], c["mask"]) and torch.equal(b["mask"], c["mask"])


def test_each_frame_is_decoded_once_while_the_budget_lasts():
    items = CountingItems(5)
    tensors = FrameTensors(items, range(5), 32, True)
    for _ in range(3):
        for i in range(5):
            tensors[i]
    assert items.reads == [1] * 5


def test_the_byte_budget_bounds_the_cache():
    items = CountingItems(5)
    per_frame = 32 * 32 * 4 + 32 * 32  # float32 image + uint8 mask
    tensors = FrameTensors(items, range(5), 32, True, cache_bytes=2 * per_frame)
    for _ in range(3):
        for i in range(5):
            tensors[i]
    assert items.reads == [1, 1, 3, 3, 3]
    unlabeled = FrameTensors(CountingItems(3), range(3), 32, False, cache_bytes=0)
    for _ in range(2):
        assert "mask" not in unlabeled[0]
    assert unlabeled.items.reads == [2, 0, 0]


def test_changing_a_served_frame_in_place_leaves_the_cache_intact():
    tensors = FrameTensors(CountingItems(1), [0], 32, True)
    served = tensors[0]
    expected = served["image"].clone()
    served["image"].zero_()
    served["mask"].fill_(5)
    assert torch.equal(tensors[0]["image"], expected)
    assert int(tensors[0]["mask"].max()) < 6 and not bool((tensors[0]["mask"] == 5).all())
