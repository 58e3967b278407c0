import numpy as np
import pytest
from scipy import ndimage

from mosxav.evaluation.metrics import distance_cap, evaluate_frame, frame_table, pair_metrics, summarize, surface
from mosxav.evaluation.metrics.surface import boundary, percentile, surface_distances


def vessel_pair(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A thin branching mask and a perturbed prediction (missed branch, shift, dilation, noise)."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((size, size), bool)
    for _ in range(rng.integers(2, 5)):
        x, y, angle = rng.uniform(10, size - 10), rng.uniform(10, size - 10), rng.uniform(0, 2 * np.pi)
        width = rng.integers(1, 4)
        for _ in range(int(rng.integers(20, 80))):
            angle += rng.normal(0, 0.2)
            x, y = x + np.cos(angle), y + np.sin(angle)
            r, c = int(round(y)), int(round(x))
            gt[max(r - width, 0) : r + width, max(c - width, 0) : c + width] = True
    pred = np.roll(gt, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    if rng.random() < 0.5:
        pred = ndimage.binary_dilation(pred)
    pred &= rng.random(pred.shape) > 0.05
    if rng.random() < 0.3:
        pred[:, : size // 3] = False
    return gt, pred


def test_boundary_counts_image_edge_as_background():
    mask = np.ones((4, 5), bool)
    b = boundary(mask)
    assert b[0].all() and b[-1].all() and b[:, 0].all() and b[:, -1].all()
    assert not b[1:-1, 1:-1].any()


def test_hand_computed_shifted_square():
    gt = np.zeros((20, 20), bool)
    gt[5:10, 5:10] = True
    pred = np.zeros_like(gt)
    pred[5:10, 8:13] = True  # shifted 3 px right
    s = pair_metrics(gt, pred)
    assert s.dice == pytest.approx(2 * 10 / 50)
    assert s.iou == pytest.approx(10 / 40)
    assert s.hd == pytest.approx(3.0)
    # Each boundary is the 16-pixel ring of a 5x5 square. From the ground-truth ring to the predicted one:
    # 4 pixels at 0 (the shared column-8/9 corners and edges), 5 at 1, 2 at 2, 5 at 3 (the far column 5),
    # so the directed sum is 0*4 + 1*5 + 2*2 + 3*5 = 24; the shift is symmetric, so ASSD = 48 / 32.
    assert s.assd == pytest.approx(1.5)
    # directed 95th percentile of [0]*4 + [1]*5 + [2]*2 + [3]*5 (linear interpolation) = 3 both ways
    assert s.hd95 == pytest.approx(3.0)


@pytest.mark.parametrize(
    "gt_on, pred_on, dice, dist",
    [(False, False, 1.0, 0.0), (True, False, 0.0, "cap"), (False, True, 0.0, "cap")],
)
def test_empty_mask_table(gt_on, pred_on, dice, dist):
    gt = np.zeros((512, 512), bool)
    pred = np.zeros_like(gt)
    gt[10:20, 10:20] = gt_on
    pred[30:40, 30:40] = pred_on
    s = pair_metrics(gt, pred)
    cap = distance_cap(gt.shape)
    assert cap == pytest.approx(724.0773, abs=1e-3)
    expected = cap if dist == "cap" else dist
    assert (s.dice, s.iou, s.nsd) == (dice, dice, dice)
    assert s.hd == s.hd95 == s.assd == pytest.approx(expected)
    assert s.capped == (gt_on != pred_on)


def test_aggregation_excludes_both_empty_and_keeps_false_positives():
    gt = np.zeros((32, 32), np.uint8)
    gt[4:12, 4:12] = 1
    pred = gt.copy()
    pred[20:24, 20:24] = 4  # a false-positive balloon
    rows = [dict(sequence="s", frame="0", **r) for r in evaluate_frame(gt, pred)]
    summary = summarize(frame_table(rows)).set_index("class")
    assert summary.loc["vessel", "dice"] == 1.0
    assert summary.loc["balloon", "dice"] == 0.0 and summary.loc["balloon", "n_capped"] == 1
    assert np.isnan(summary.loc["catheter", "dice"]) and summary.loc["catheter", "n_true_negative"] == 1
    assert summary.loc["mean", "dice"] == pytest.approx(0.5)  # vessel and balloon evaluated; no free 1.0s


def test_anisotropic_spacing_scales_distances():
    gt = np.zeros((40, 40), bool)
    gt[10:20, 10:20] = True
    pred = np.roll(gt, 2, axis=0)
    iso = pair_metrics(gt, pred)
    aniso = pair_metrics(gt, pred, spacing=(0.5, 1.0))
    assert aniso.hd == pytest.approx(iso.hd * 0.5)


def test_agrees_with_monai_on_100_pairs():
    monai_metrics = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    import warnings

    worst = {}
    for seed in range(100):
        gt, pred = vessel_pair(seed)
        if not gt.any() or not pred.any():
            continue
        spacing = (1.0, 1.0) if seed % 4 else (0.7, 1.3)
        ours = pair_metrics(gt, pred, spacing=spacing, tolerance=2.0)
        G = torch.from_numpy(gt)[None, None].float()
        P = torch.from_numpy(pred)[None, None].float()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = {
                "hd": monai_metrics.compute_hausdorff_distance(P, G, spacing=spacing).item(),
                "hd95": monai_metrics.compute_hausdorff_distance(P, G, percentile=95, spacing=spacing).item(),
                "assd": monai_metrics.compute_average_surface_distance(P, G, symmetric=True, spacing=spacing).item(),
                "nsd": monai_metrics.compute_surface_dice(
                    P, G, class_thresholds=[2.0], spacing=spacing, use_subvoxels=True
                ).item(),
                "dice": monai_metrics.compute_dice(P, G).item(),
                "iou": monai_metrics.compute_iou(P, G).item(),
            }
        for key, value in ref.items():
            rel = abs(getattr(ours, key) - value) / max(abs(value), 1e-6)
            worst[key] = max(worst.get(key, 0.0), rel)
    assert worst and all(v < 1e-4 for v in worst.values()), worst


@pytest.mark.parametrize("n", [1, 2, 3, 19, 20, 101, 4096])
def test_percentile_is_numpys_linear_percentile(n):
    values = np.random.default_rng(n).exponential(3.0, n)
    for q in (0, 5, 50, 95, 99.5, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 0.5), (0.7, 1.3)])
@pytest.mark.parametrize("path", ["brute force", "KD-tree"])
def test_directed_distances_equal_an_exact_distance_transform(spacing, path, monkeypatch):
    """Every route a boundary pixel can take (shell lookup, all-pairs minimum, KD-tree) gives the exact
    distance of scipy's Euclidean distance transform, pixel by pixel."""
    monkeypatch.setattr(surface, "BRUTE_FORCE_PAIRS", 1 << 40 if path == "brute force" else 0)
    for seed in range(12):
        gt, pred = vessel_pair(seed)
        pred[100:104, 3:40] = True  # a false positive far from every vessel
        if not gt.any():
            continue
        found = surface_distances(gt, pred, spacing)
        edt_pred = ndimage.distance_transform_edt(~boundary(pred), sampling=spacing)
        edt_gt = ndimage.distance_transform_edt(~boundary(gt), sampling=spacing)
        np.testing.assert_allclose(found.gt_to_pred, edt_pred[boundary(gt)], rtol=1e-12)
        np.testing.assert_allclose(found.pred_to_gt, edt_gt[boundary(pred)], rtol=1e-12)
        assert found.hd > 2 * surface.NEAR_RADIUS * max(spacing)  # the far pixels were exercised


@pytest.mark.parametrize("shape", [(64, 64), (50, 37)])
def test_class_windows_are_the_bounding_boxes_of_either_map(shape):
    from mosxav.evaluation.metrics.semantic import EMPTY_WINDOW, class_windows

    rng = np.random.default_rng(shape[1])
    gt = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    gt[5:20, 7:30] = 1
    pred[10:40, 2:12] = 1
    gt[30:33, 20:25] = 3  # class 3 in the ground truth alone
    pred[rng.random(shape) < 0.01] = 9  # an id of 8 or more: no bit, no window
    windows = class_windows(gt, pred, (1, 2, 3, 5))
    for cls, window in windows.items():
        union = (gt == cls) | (pred == cls)
        if not union.any():
            assert window == EMPTY_WINDOW
            continue
        rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
        assert window == (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    assert windows[1] == (slice(5, 40), slice(2, 30)) and windows[2] == EMPTY_WINDOW
    # a transposed (not C-contiguous) map takes the per-pixel OR along its rows
    assert class_windows(gt.T, pred.T, (1,))[1] == (slice(2, 30), slice(5, 40))
    # ids of 8 and more are boxed one class at a time
    assert class_windows(gt, pred, (1, 9))[1] == windows[1]
    nine = np.argwhere(pred == 9)
    assert class_windows(gt, pred, (1, 9))[9] == (
        slice(nine[:, 0].min(), nine[:, 0].max() + 1),
        slice(nine[:, 1].min(), nine[:, 1].max() + 1),
    )
    with pytest.raises(ValueError, match="2-D"):
        class_windows(gt[None], pred[None], (1,))


@pytest.mark.parametrize("path", ["brute force", "KD-tree"])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.3)])
@pytest.mark.parametrize("stray", [False, True])
def test_evaluate_frame_equals_pair_metrics_of_the_whole_frame(path, spacing, stray, monkeypatch):
    """Scoring each class on its window, the classes as bands of one map, changes nothing to the last
    bit, the cap for a class in one map alone included (the frame's diagonal, not the window's), and
    far boundary pixels in several bands measured against their own band only."""
    monkeypatch.setattr(surface, "BRUTE_FORCE_PAIRS", 1 << 40 if path == "brute force" else 0)
    gt = np.zeros((96, 80), np.uint8)
    pred = np.zeros((96, 80), np.uint8)
    for cls, (seed, size) in enumerate([(1, 96), (2, 80), (3, 64)], start=1):
        a, b = vessel_pair(seed, size)
        width = min(size, 80)
        gt[:size, :width][a[:, :width]] = cls
        pred[:size, :width][b[:, :width]] = cls
    gt[gt == 3] = 0  # class 3 in the prediction alone
    if stray:  # far false positives of classes 1 and 2: far pixels in two bands
        pred[90:94, 60:75] = 1
        pred[2:5, 70:78] = 2
    rows = evaluate_frame(gt, pred, classes=(1, 2, 3, 4, 5), spacing=spacing)
    for row in rows:
        whole = pair_metrics(gt == row["class_id"], pred == row["class_id"], spacing=spacing).as_dict()
        assert {key: row[key] for key in whole} == whole, row["class_id"]
    assert rows[2]["hd"] == distance_cap((96, 80), spacing)
    assert max(rows[0]["hd"], rows[1]["hd"]) > 2 * surface.NEAR_RADIUS * max(spacing)


def test_width_recall_tells_a_missed_thin_branch_from_a_missed_trunk():
    from mosxav.evaluation.metrics.width import split_by_width, width_recall

    gt = np.zeros((40, 60), bool)
    gt[5:14, :] = True  # a trunk 9 px wide, touching both image edges
    gt[25:27, 10:50] = True  # a branch 2 px wide
    trunk, thin = split_by_width(gt, radius=2)
    assert trunk[5:14, :].all() and not trunk[25:27].any()  # the image edge does not shave the trunk
    assert (trunk | thin).sum() == gt.sum() and not (trunk & thin).any()
    only_trunk = width_recall(gt, gt & ~thin, radius=2)
    assert only_trunk.trunk_recall == 1.0 and only_trunk.thin_recall == 0.0
    assert only_trunk.thin_share == pytest.approx(80 / (9 * 60 + 80))
    half_trunk = width_recall(gt, thin | (trunk & (np.arange(60) < 30)), radius=2)
    assert half_trunk.trunk_recall == 0.5 and half_trunk.thin_recall == 1.0
    pooled = only_trunk + half_trunk
    assert pooled.thin_recall == 0.5 and pooled.trunk_recall == 0.75
    assert np.isnan(width_recall(np.zeros((8, 8), bool), np.zeros((8, 8), bool)).thin_recall)
