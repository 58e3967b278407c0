import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mosxav.data.files import write_index_mask
from mosxav.data.layout import read_first_mask_json, read_split_file
from mosxav.evaluation.vos import boundary_f, evaluate_vos, region_similarity, seg2bmap


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
