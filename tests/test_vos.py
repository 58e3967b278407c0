import numpy as np
import pandas as pd
import pytest

from conftest import ANNOTATIONS, needs_annotations
from mosxav.io import write_index_mask
from mosxav.layout import read_split_file
from mosxav.vos import boundary_f, evaluate_vos, region_similarity, seg2bmap


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


@needs_annotations
def test_reproduces_official_val_results_csv():
    names = read_split_file(ANNOTATIONS / "val" / "val_videos.txt")
    result = evaluate_vos(ANNOTATIONS / "val" / "gt", ANNOTATIONS / "val" / "pred_xravos", sequences=names)
    ref = pd.read_csv(ANNOTATIONS / "val" / "pred_xravos" / "results.csv", skipinitialspace=True, dtype=str)
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
    theirs = [line.replace(" ", "") for line in (ANNOTATIONS / "val" / "pred_xravos" / "results.csv").read_text().splitlines()]
    assert ours == theirs


def test_seen_unseen_headline_is_four_way_mean(tiny_root):
    # perfect predictions on the synthetic test split give 100 everywhere, seen and unseen
    split_root = tiny_root / "test"
    result = evaluate_vos(tiny_root, tiny_root, split="test", first_mask=split_root / "ImageSets" / "test_first_mask.json")
    assert result.has_seen_split
    g = result.global_scores()
    assert g["J&F"] == pytest.approx(100.0)
    assert {"J_s", "F_s"} <= set(g) or {"J_u", "F_u"} <= set(g)
    assert result.to_csv().splitlines()[0].replace(" ", "").startswith(",,J&F")
