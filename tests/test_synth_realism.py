"""The mask statistics that judge the synthetic generator, on shapes whose answer is known by hand,
and the generator's objects as MOSXAV defines them (one id per structure, agreeing with the classes)."""

import json

import numpy as np
import pytest

from mosxav import MOSXAV
from mosxav.constants import OTHERS, VESSEL

pytest.importorskip("skimage")

from mosxav.data.synth.realism import (  # noqa: E402
    RealismStats,
    compare,
    frame_stats,
    measure,
    realism_report,
    skeleton_displacement,
)


def bar(shape=(64, 64), rows=(20, 27), cols=(5, 60)):
    mask = np.zeros(shape, np.uint8)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = 1
    return mask


def test_a_cross_has_one_branch_point_one_component_no_hole():
    mask = bar(rows=(30, 35)) | bar(rows=(5, 60), cols=(30, 35))
    stats = frame_stats(mask)
    assert (stats.branch_points, stats.holes, stats.components) == (1, 0, 1)


def test_holes_count_enclosed_background_of_ten_pixels_or_more():
    ring = np.zeros((64, 64), np.uint8)
    ring[10:30, 10:30] = 1
    ring[14:26, 14:26] = 0  # 144 px enclosed
    speck = np.zeros((64, 64), np.uint8)
    speck[40:46, 40:46] = 2
    speck[42:45, 42:45] = 0  # 9 px enclosed: annotation speckle, not a hole
    stats = frame_stats(ring | speck)
    assert stats.holes == 1 and stats.components == 2 and stats.ids == frozenset({1, 2})


def test_width_is_twice_the_distance_to_background_on_the_skeleton():
    stats = frame_stats(bar(rows=(20, 27)))  # 7 px tall: the centre row is 4 px from background
    assert np.median(stats.widths) == 8.0
    assert stats.foreground_share == pytest.approx(7 * 55 / 64**2)


def test_skeleton_displacement_is_the_shift_of_a_bar():
    before = frame_stats(bar(rows=(20, 27))).skeleton
    after = frame_stats(bar(rows=(23, 30))).skeleton
    assert skeleton_displacement(before, after) == 3.0
    assert skeleton_displacement(before, np.zeros_like(before)) is None


def test_sequence_statistics_motion_over_five_frames_and_objects_gone():
    first = bar(rows=(20, 27))
    first[40:50, 40:50] = 2
    last = bar(rows=(30, 37))  # moved 10 px in 5 frames; object 2 gone
    stats = RealismStats()
    stats.add_sequence([(0, first), (5, last)])
    summary = stats.summary()
    assert summary["objects per sequence"] == 2
    assert summary["median skeleton displacement (px/frame)"] == 2.0
    assert summary["objects gone by the last annotated frame (%)"] == 50.0
    same = compare(stats, stats)
    assert all(row.ratio == 1.0 and row.within_goal for row in same)


def test_generator_gives_one_id_per_structure_agreeing_with_the_classes(tiny_root):
    for split in ("train", "test"):
        data = MOSXAV(tiny_root, split, task="vos", annotated_only=True)
        for index in range(len(data)):
            item = data[index]
            instance, semantic = item["instance"], item["semantic"]
            assert ((instance > 0) == (semantic > 0)).all()
            for obj in np.unique(instance[instance > 0]):
                classes = np.unique(semantic[instance == obj])
                assert len(classes) == 1, (split, index, obj, classes)
                if obj == 1:
                    assert classes[0] == VESSEL  # id 1 is the vessel tree, one object
    info = json.loads((tiny_root / "test" / "ImageSets" / "test_first_mask.json").read_text())
    test = MOSXAV(tiny_root, "test", task="vos", annotated_only=True)
    for sequence in test.sequences():
        entry = info["videos"][sequence.name]
        others = set()
        for item in sequence:
            ids = np.unique(item["instance"][item["semantic"] == OTHERS])
            others |= {str(int(i)) for i in ids}
        assert set(entry["unseen_objects"]) == others  # unseen = a class the training split lacks


def test_report_writes_table_csv_and_picture(tiny_root, tmp_path):
    rows = realism_report(tiny_root, tiny_root, tmp_path)
    assert len(rows) == 10 and all(row.ratio == pytest.approx(1.0) for row in rows if row.real)
    assert "| objects per sequence |" in (tmp_path / "realism.md").read_text()
    assert (tmp_path / "realism.csv").read_text().startswith("statistic,real,synthetic,ratio")
    assert (tmp_path / "realism.png").stat().st_size > 1000
    assert measure(tiny_root, parts=("test",)).frames == 6 * 11  # six test sequences of 11 frames


def test_devices_enter_late_and_advance():
    from mosxav.data.synth.render import Device

    points = np.stack([np.linspace(0.1, 0.9, 400), np.full(400, 0.5)], axis=1)
    wire = Device(3, points, np.full(400, 0.004), 0.25, 1.0, enters=3.0, advance=0.05)
    assert wire.visible_points(2) is None  # not there before it enters
    shown = [len(points[wire.visible_points(t)]) for t in (3, 4, 8)]
    assert shown[0] < shown[1] < shown[2] <= 400  # the tip advances frame by frame
    balloon = Device(4, points[:40], np.full(40, 0.01), 0.1, 1.0, enters=5.0)
    assert balloon.visible_points(4) is None and len(points[:40][balloon.visible_points(5)]) == 40


def test_first_mask_json_follows_objects_that_enter_late(tmp_path):
    from mosxav.data.synth import SynthConfig, generate_dataset

    root = generate_dataset(tmp_path / "s", SynthConfig(sequences=2, frames=30, size=48, seed=5, test_sequences=6))
    info = json.loads((root / "test" / "ImageSets" / "test_first_mask.json").read_text())
    test = MOSXAV(root, "test", task="vos", annotated_only=True)
    late = 0
    for sequence in test.sequences():
        first_seen: dict[str, str] = {}
        for item in sequence:
            for obj in np.unique(item["instance"][item["instance"] > 0]):
                first_seen.setdefault(str(int(obj)), item["frame"])
        listed = {o: f for f, entry in info["videos"][sequence.name]["frames"].items() for o in entry["objects"]}
        assert listed == first_seen
        late += sum(frame != "00000" for frame in first_seen.values())
    assert late > 0  # some guidewire, balloon or contrast front arrives after the first frame
