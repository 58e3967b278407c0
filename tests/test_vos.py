import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from mosxav.data.files import read_index_mask, write_index_mask
from mosxav.data.layout import read_first_mask_json, read_split_file
from mosxav.evaluation.vos import (
    boundary_f,
    boundary_radius,
    evaluate_vos,
    frame_scores,
    region_similarity,
    seg2bmap,
)
from mosxav.morphology import disk


def test_seg2bmap_marks_east_south_transitions():
    mask = np.zeros((6, 6), bool)
    mask[2:4, 2:4] = True
    b = seg2bmap(mask)
    assert b[2:4, 2:4].sum() == 3 and not b[2, 2]  # (2, 2) has its E, S and SE neighbours inside
    assert b[1, 1] and not b[0, 0]  # the south-east neighbour of (1, 1) is inside


def test_j_and_f_edge_cases():
    empty = np.zeros((64, 64), bool)
    full = empty.copy()
    full[10:30, 10:30] = True
    assert region_similarity(empty, empty) == 1.0
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(full, empty) == 0.0 and boundary_f(empty, full) == 0.0
    assert boundary_f(full, full) == 1.0
    shifted = np.roll(full, 1, axis=1)  # within the 1-px tolerance at 64x64 (ceil(0.008*90.5) = 1)
    assert boundary_f(full, shifted) == pytest.approx(1.0)
    far = np.roll(full, 5, axis=1)
    assert boundary_f(full, far) < 0.7


def _write_seq(folder, masks):
    for i, m in enumerate(masks):
        write_index_mask(folder / f"{i:05d}.png", m)


def test_first_and_last_frames_are_not_scored(tmp_path):
    gt = [np.zeros((16, 16), np.uint8) for _ in range(5)]
    for g in gt:
        g[4:8, 4:8] = 1
    pred = [g.copy() for g in gt]
    pred[0][:] = 0  # frame 0 wrong: not scored
    pred[4][:] = 0  # last frame wrong: not scored
    _write_seq(tmp_path / "gt" / "v00", gt)
    _write_seq(tmp_path / "pred" / "v00", pred)
    result = evaluate_vos(tmp_path / "gt", tmp_path / "pred")
    assert result.objects[0].n_frames == 3
    assert result.global_scores()["J"] == pytest.approx(100.0)
    pred[2][:] = 0
    _write_seq(tmp_path / "pred" / "v00", pred)
    assert evaluate_vos(tmp_path / "gt", tmp_path / "pred").global_scores()["J"] == pytest.approx(200 / 3)


def test_missing_prediction_frame_names_the_folder(tmp_path):
    gt = [np.ones((8, 8), np.uint8)] * 4
    _write_seq(tmp_path / "gt" / "v00", gt)
    _write_seq(tmp_path / "pred" / "v00", gt[:3])
    with pytest.raises(ValueError, match=r"pred.*v00.*00003"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred")


def test_reproduces_official_val_results_csv(annotations_root):
    names = read_split_file(annotations_root / "val" / "val_videos.txt")
    result = evaluate_vos(annotations_root / "val" / "gt", annotations_root / "val" / "pred_xravos", sequences=names)
    ref = pd.read_csv(annotations_root / "val" / "pred_xravos" / "results.csv", skipinitialspace=True, dtype=str)
    ref.columns = [c.strip() for c in ref.columns]
    ref["sequence"] = ref["sequence"].str.strip()
    glob = ref[ref["sequence"] == "Global score"].iloc[0]
    g = result.global_scores()
    for key in ("J&F", "J", "F"):
        assert g[key] == pytest.approx(float(glob[key]), abs=0.1)
    rows = ref[ref["sequence"] != "Global score"]
    mine = {(o.sequence, o.obj): o for o in result.objects}
    assert len(mine) == len(rows) == 33
    for _, row in rows.iterrows():
        o = mine[(row["sequence"], int(row["obj"]))]
        assert o.j == pytest.approx(float(row["J"]), abs=0.1)
        assert o.f == pytest.approx(float(row["F"]), abs=0.1)
        assert o.jf == pytest.approx(float(row["J&F"]), abs=0.1)
    # the CSV we write is the official one, column for column
    ours = [line.replace(" ", "") for line in result.to_csv().splitlines()]
    theirs = [
        line.replace(" ", "")
        for line in (annotations_root / "val" / "pred_xravos" / "results.csv").read_text().splitlines()
    ]
    assert ours == theirs


def test_seen_unseen_headline_is_four_way_mean(tiny_root, tmp_path):
    """With one unseen object erased from the predictions, the headline is the mean of J_s, F_s, J_u and
    F_u, each a mean over its own objects: all four present, seen untouched, unseen lowered."""
    split_root = tiny_root / "test"
    first_mask = split_root / "ImageSets" / "test_first_mask.json"
    unseen = read_first_mask_json(first_mask)["v00"]["unseen"]
    erased = int(sorted(unseen)[0])
    pred = Path(shutil.copytree(split_root / "Annotations", tmp_path / "pred"))
    for png in (pred / "v00").glob("*.png"):
        with Image.open(png) as image:
            palette = image.getpalette()
            ids = np.asarray(image)
        out = Image.fromarray(np.where(ids == erased, 0, ids).astype(np.uint8), mode="P")
        out.putpalette(palette)
        out.save(png)
    result = evaluate_vos(split_root / "Annotations", pred, first_mask=first_mask)
    assert result.has_seen_split
    g = result.global_scores()
    assert set(g) == {"J&F", "J", "F", "J_s", "F_s", "J_u", "F_u"}
    assert g["J_s"] == pytest.approx(100.0) and g["F_s"] == pytest.approx(100.0)
    unseen_objects = [o for o in result.objects if not o.seen]
    assert g["J_u"] == pytest.approx(np.mean([o.j for o in unseen_objects])) and g["J_u"] < 100.0
    assert g["F_u"] == pytest.approx(np.mean([o.f for o in unseen_objects])) and g["F_u"] < 100.0
    assert g["J&F"] == pytest.approx((g["J_s"] + g["F_s"] + g["J_u"] + g["F_u"]) / 4)
    header = result.to_csv().splitlines()[0].replace(" ", "")
    assert header == ",,J&F,J_s,F_s,J_u,F_u"


def _reference_boundary_f(gt: np.ndarray, pred: np.ndarray, radius: int) -> float:
    """The DAVIS computation as published: full-frame boundaries dilated by the disk."""
    b_gt, b_pred = seg2bmap(gt), seg2bmap(pred)
    n_gt, n_pred = b_gt.sum(), b_pred.sum()
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    precision = (b_pred & ndimage.binary_dilation(b_gt, structure=disk(radius))).sum() / n_pred
    recall = (b_gt & ndimage.binary_dilation(b_pred, structure=disk(radius))).sum() / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(6))
def test_boundary_f_equals_the_dilation_of_the_official_code(seed):
    """Counting without dilating gives the official number to the last bit, on blobs and thin curves that
    touch the image border, at the 512-px tolerance (6) and others."""
    rng = np.random.default_rng(seed)
    size = (int(rng.integers(40, 130)), int(rng.integers(40, 130)))
    for _ in range(8):
        gt = ndimage.gaussian_filter(rng.random(size), rng.uniform(1, 4)) > rng.uniform(0.5, 0.56)
        pred = np.roll(gt, tuple(rng.integers(-5, 6, 2)), axis=(0, 1)) ^ (rng.random(size) > 0.995)
        for threshold in (0.008, 2, 6):
            radius = boundary_radius(gt.shape, threshold)
            assert boundary_f(gt, pred, threshold) == _reference_boundary_f(gt, pred, radius)


def test_frame_scores_match_per_object_masks(tiny_root):
    gt = read_index_mask(next((tiny_root / "test" / "Annotations" / "v00").glob("*.png")))
    pred = np.roll(gt, 3, axis=1)
    objects = [int(v) for v in np.unique(gt) if v] + [99]
    scores = frame_scores(gt, pred, objects, 6)
    for obj, (j, f) in zip(objects, scores, strict=True):
        assert j == region_similarity(gt == obj, pred == obj)
        assert f == _reference_boundary_f(gt == obj, pred == obj, 6)
    assert scores[-1] == (1.0, 1.0)  # an object in neither map
