"""Benchmark: MOSXAV-Bench metrics against MONAI in the same run (ratios, not absolute claims).

1. One 512x512 thin-vessel pair: our full set (Dice, IoU, HD, HD95, ASSD, NSD) vs MONAI's five
   separate calls, and HD95 alone vs MONAI's HD95; values are checked to agree.
2. Real masks: every object of the MOSXAV val ground truth against the XRAVOS reference predictions
   (``../shared/data/mosxav-annotations``, when present): the full set per pair, ours vs MONAI, values
   checked to 1e-4.
3. A MOSXAV-test-sized evaluation (488 frames x 5 classes, 512x512) with ``evaluate_semantic``: the
   cold first call, five warm calls each on 2 and 1 workers (their range), and the share of one
   worker's time that is reading the PNGs.

Run: ``python bench/metrics.py`` (MONAI needed for part 1: ``pip install monai``).
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from mosxav.data.files import read_index_mask, write_semantic_mask
from mosxav.data.synth.render import SequenceRenderer
from mosxav.evaluation.folder import evaluate_semantic
from mosxav.evaluation.metrics import pair_metrics, surface_distances


def timed(fn, repeat: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def predicted(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: shifted a pixel, a few pixels lost, a distal branch missed."""
    from scipy import ndimage

    pred = np.roll(mask, 1, axis=1) & (rng.random(mask.shape) > 0.03)
    labels, n = ndimage.label(pred)
    if n > 1:
        pred[labels == n] = False
    return pred


def frames(n: int, size: int = 512):
    rng = np.random.default_rng(0)
    renderer = SequenceRenderer(rng, size, n, 5, with_others=True)
    for t in range(n):
        yield renderer.render(t)[1]


def bench_pair() -> None:
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    torch.set_num_threads(1)
    gt = next(m for m in frames(30) if (m == 1).sum() > 3000) == 1
    pred = predicted(gt, np.random.default_rng(1))
    G, P = torch.from_numpy(gt)[None, None].float(), torch.from_numpy(pred)[None, None].float()

    def monai_all():
        return (
            compute_dice(P, G),
            compute_hausdorff_distance(P, G),
            compute_hausdorff_distance(P, G, percentile=95),
            compute_average_surface_distance(P, G, symmetric=True),
            compute_surface_dice(P, G, class_thresholds=[2.0], use_subvoxels=True),
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = pair_metrics(gt, pred)
        ref = monai_all()
        t_ours = timed(lambda: pair_metrics(gt, pred), 30)
        t_monai = timed(monai_all, 5)
        t_hd95_ours = timed(lambda: surface_distances(gt, pred).hd_percentile(95), 30)
        t_hd95_monai = timed(lambda: compute_hausdorff_distance(P, G, percentile=95), 10)
    assert abs(ours.hd95 - ref[2].item()) <= 1e-4 * max(ref[2].item(), 1), (ours.hd95, ref[2].item())
    assert abs(ours.nsd - ref[4].item()) <= 1e-4
    print(
        f"pair 512x512 ({gt.sum()} vessel px): HD95={ours.hd95:.3f} (MONAI {ref[2].item():.3f}) "
        f"NSD={ours.nsd:.4f} (MONAI {ref[4].item():.4f})"
    )
    print(f"  full set : ours {t_ours:6.2f} ms | MONAI 5 calls {t_monai:6.2f} ms | speed-up {t_monai / t_ours:5.1f}x")
    print(
        f"  HD95 only: ours {t_hd95_ours:6.2f} ms | MONAI         {t_hd95_monai:6.2f} ms | "
        f"speed-up {t_hd95_monai / t_hd95_ours:5.1f}x"
    )


ANNOTATIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mosxav-annotations"


def real_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """(ground truth, prediction) boolean masks of every object on every val GT frame."""
    from PIL import Image

    val = ANNOTATIONS / "val"
    pairs = []
    for name in (val / "val_videos.txt").read_text().split():
        for path in sorted((val / "gt" / name).glob("*.png")):
            gt = np.asarray(Image.open(path))
            pred = np.asarray(Image.open(val / "pred_xravos" / name / path.name))
            pairs += [(gt == obj, pred == obj) for obj in np.flatnonzero(np.bincount(gt.ravel())) if obj]
    return pairs


def bench_real_pairs() -> None:
    import torch

    torch.set_num_threads(1)
    pairs = real_pairs()
    ours, refs = [], []
    spent = {"ours": 0.0, "monai": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Interleaved pair by pair, so that a machine slowing down mid-run (shared cloud cores) weighs on
        # both sides of the ratio alike.
        for gt, pred in pairs:
            start = time.perf_counter()
            ours.append(pair_metrics(gt, pred))
            middle = time.perf_counter()
            refs.append(monai_all(gt, pred))
            spent["ours"] += middle - start
            spent["monai"] += time.perf_counter() - middle
    t_ours = spent["ours"] / len(pairs) * 1000
    t_monai = spent["monai"] / len(pairs) * 1000
    worst = 0.0
    for mine, ref in zip(ours, refs, strict=True):
        for value, theirs in ((mine.hd95, ref[2]), (mine.assd, ref[3]), (mine.hd, ref[1])):
            if np.isfinite(theirs):
                worst = max(worst, abs(value - theirs) / max(abs(theirs), 1.0))
        assert abs(mine.dice - ref[0]) <= 1e-6 and abs(mine.nsd - ref[4]) <= 1e-4
    assert worst <= 1e-4, worst
    print(
        f"real MOSXAV masks, {len(pairs)} object pairs (val GT vs XRAVOS): full set ours {t_ours:5.2f} ms/pair | "
        f"MONAI {t_monai:6.1f} ms/pair | speed-up {t_monai / t_ours:5.1f}x (max relative difference {worst:.1e})"
    )


def monai_all(gt: np.ndarray, pred: np.ndarray) -> list[float]:
    """Dice, HD, HD95, ASSD, NSD@2 from MONAI's separate calls, as floats."""
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    G, P = torch.from_numpy(gt)[None, None].float(), torch.from_numpy(pred)[None, None].float()
    values = (
        compute_dice(P, G),
        compute_hausdorff_distance(P, G),
        compute_hausdorff_distance(P, G, percentile=95),
        compute_average_surface_distance(P, G, symmetric=True),
        compute_surface_dice(P, G, class_thresholds=[2.0], use_subvoxels=True),
    )
    return [float(v.item()) for v in values]


def bench_test_split() -> None:
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        gt_root, pred_root = Path(tmp) / "gt", Path(tmp) / "pred"
        count = 0
        gen = list(frames(41))
        for seq in range(12):
            for t, mask in enumerate(gen[: 488 // 12 + (1 if seq < 488 % 12 else 0)]):
                write_semantic_mask(gt_root / f"v{seq:02d}" / f"{t:05d}.png", mask)
                pred = mask.copy()
                pred[predicted(mask == 1, rng) ^ (mask == 1)] = 0
                write_semantic_mask(pred_root / f"v{seq:02d}" / f"{t:05d}.png", pred)
                count += 1
        start = time.perf_counter()
        table = evaluate_semantic(gt_root, pred_root)
        cold = time.perf_counter() - start
        # Warm calls of 2 and 1 workers in turn, so that the machine's slow phases (shared cloud cores)
        # show as a spread on both rather than as a ratio.
        warm: dict[int, list[float]] = {2: [], 1: []}
        for _ in range(5):
            for workers in (2, 1):
                start = time.perf_counter()
                evaluate_semantic(gt_root, pred_root, workers=workers)
                warm[workers].append(time.perf_counter() - start)
        paths = sorted(gt_root.rglob("*.png")) + sorted(pred_root.rglob("*.png"))
        decoding = []
        for _ in range(3):
            start = time.perf_counter()
            for path in paths:
                read_index_mask(path, max_id=5)
            decoding.append(time.perf_counter() - start)
    two, one = sorted(warm[2]), sorted(warm[1])
    print(
        f"MOSXAV-test-sized evaluation: {count} frames x 5 classes = {len(table)} pairs: on 2 workers "
        f"{two[0]:.2f}-{two[-1]:.2f} s in 5 warm calls (median {two[2]:.2f}; cold first call {cold:.2f} s); "
        f"on 1 worker {one[0]:.2f}-{one[-1]:.2f} s, of which reading the {len(paths)} PNGs {min(decoding):.2f} s "
        f"= {min(decoding) / one[2]:.0%} of the median; goal < 1.5 s on 2 workers"
    )


if __name__ == "__main__":
    try:
        bench_pair()
        if ANNOTATIONS.is_dir():
            bench_real_pairs()
        else:
            print(f"{ANNOTATIONS} not found: skipping the real-mask comparison", file=sys.stderr)
    except ImportError:
        print("MONAI not installed: skipping the MONAI comparison", file=sys.stderr)
    bench_test_split()
