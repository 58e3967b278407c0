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
    return m


def test_rate_zero_is_the_identity():
    m = _mask()
    assert np.array_equal(corrupt_mask(m, 0.0, np.random.default_rng(0)), m)


def test_rate_one_applies_every_corruption():
    m = _mask()
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), kinds=("drop_branch",))
    assert not (out == 1).any()  # every vessel segment dropped
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), kinds=("class_swap",))
    assert np.array_equal(out == 3, m == 2) and np.array_equal(out == 2, m == 3)
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), kinds=("boundary",))
    for cls in (1, 2, 3):
        assert (out == cls).sum() != (m == cls).sum()
    out = corrupt_mask(m, 1.0, np.random.default_rng(0), kinds=("blobs",))
    assert (out != m).sum() > 0 and out.max() <= 4


def test_noise_grows_with_the_rate_and_is_reproducible():
    m = _mask()
    changed = []
    for rate in (0.1, 0.5, 0.9):
        total = sum((corrupt_mask(m, rate, frame_rng(s, "v00/00000")) != m).sum() for s in range(40))
        changed.append(total)
    assert changed[0] < changed[1] < changed[2]
    a = corrupt_mask(m, 0.5, frame_rng(3, "v00/00005"))
    b = corrupt_mask(m, 0.5, frame_rng(3, "v00/00005"))
    assert np.array_equal(a, b)


def test_bad_arguments_are_refused():
    m = _mask()
    with pytest.raises(ValueError, match="rate"):
        corrupt_mask(m, 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown noise kinds"):
        corrupt_mask(m, 0.5, np.random.default_rng(0), kinds=("salt",))
    assert set(KINDS) == {"boundary", "drop_branch", "class_swap", "blobs"}


def test_batch_corruption_of_pseudo_labels():
    m = _mask()
    labels = torch.from_numpy(np.stack([m, m])).long()
    assert corrupt_batch(labels, 0.0) is labels
    out = corrupt_batch(labels, 1.0, torch.Generator().manual_seed(0))
    assert out.shape == labels.shape and out.dtype == labels.dtype and (out != labels).any()


def test_vessel_segments_partition_the_vessel_into_eighths_of_the_frame():
    from mosxav.training.label_noise import vessel_segments

    vessel = np.zeros((128, 128), bool)
    vessel[60:64, 0:128] = True  # one 128 px long, 4 px wide vessel: 8 segments of 16 px
    segments = vessel_segments(vessel, np.random.default_rng(0))
    assert len(segments) == 8
    assert np.array_equal(np.sum(segments, axis=0), vessel.astype(int))  # a partition, no overlap
    assert vessel_segments(np.zeros((8, 8), bool), np.random.default_rng(0)) == []
    out = corrupt_mask(vessel.astype(np.uint8), 0.5, np.random.default_rng(1), kinds=("drop_branch",))
    assert 0 < (out == 1).sum() < vessel.sum()  # some segments dropped, not the whole vessel
