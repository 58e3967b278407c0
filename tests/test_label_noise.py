import numpy as np
import pytest
import torch

from mosxav.training.label_noise import KINDS, corrupt_batch, corrupt_mask, frame_rng


def _mask():
    m = np.zeros((64, 64), np.uint8)
    m[10:12, 5:60] = 1  # branch 1
    m[20:50, 30:32] = 1  # branch 2
    m[55:60, 5:20] = 2
    m[40:45, 40:60] = 3
    inst = np.zeros_like(m)
    inst[10:12, 5:60] = 1
    inst[20:50, 30:32] = 2
    return m, inst


def test_rate_zero_is_the_identity():
    m, inst = _mask()
    assert np.array_equal(corrupt_mask(m, 0.0, np.random.default_rng(0), inst), m)


def test_rate_one_applies_every_corruption():
    m, inst = _mask()
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), inst, kinds=("drop_branch",))
    assert not (out == 1).any()  # every branch dropped
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), inst, kinds=("class_swap",))
    assert np.array_equal(out == 3, m == 2) and np.array_equal(out == 2, m == 3)
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), inst, kinds=("boundary",))
    for cls in (1, 2, 3):
        assert (out == cls).sum() != (m == cls).sum()
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), inst, kinds=("blobs",))
    assert (out != m).sum() > 0 and out.max() <= 4


def test_noise_grows_with_the_rate_and_is_reproducible():
    m, inst = _mask()
    changed = []
    for rate in (0.1, 0.5, 0.9):
        total = sum((corrupt_mask(m, rate, frame_rng(s, "v00/00000"), inst) != m).sum() for s in range(40))
        changed.append(total)
    assert changed[0] < changed[1] < changed[2]
    a = corrupt_mask(m, 0.5, frame_rng(3, "v00/00005"), inst)
    b = corrupt_mask(m, 0.5, frame_rng(3, "v00/00005"), inst)
    assert np.array_equal(a, b)


def test_bad_arguments_are_refused():
    m, _ = _mask()
    with pytest.raises(ValueError, match="rate"):
        corrupt_mask(m, 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown noise kinds"):
        corrupt_mask(m, 0.5, np.random.default_rng(0), kinds=("salt",))
    assert set(KINDS) == {"boundary", "drop_branch", "class_swap", "blobs"}


def test_batch_corruption_of_pseudo_labels():
    m, _ = _mask()
    labels = torch.from_numpy(np.stack([m, m])).long()
    assert corrupt_batch(labels, 0.0) is labels
    out = corrupt_batch(labels, 1.0, torch.Generator().manual_seed(0))
    assert out.shape == labels.shape and out.dtype == labels.dtype and (out != labels).any()
