import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from mosxav import MOSXAV
from mosxav.constants import IGNORE_INDEX
from mosxav.data.check import check_dataset
from mosxav.data.files import write_index_mask, write_semantic_mask
from mosxav.data.synth import SynthConfig, generate_dataset


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_layout_is_exact(tiny_root, tiny_config):
    tv, test = tiny_root / "trainval", tiny_root / "test"
    for part in (tv, test):
        for sub in ("JPEGImages", "Annotations", "Annotations_Semantic", "ImageSets"):
            assert (part / sub).is_dir(), part / sub
        assert json.loads((part / "labels.json").read_text())["classes"][1]["color"] == [85, 170, 255]
    assert (tv / "ImageSets" / "train.txt").is_file() and (tv / "ImageSets" / "val_first_mask.json").is_file()
    assert (test / "ImageSets" / "test.txt").read_text().split() == [f"v{i:02d}" for i in range(tiny_config.n_test)]
    seq = sorted((tv / "JPEGImages").iterdir())[0]
    assert [p.name for p in sorted(seq.iterdir())][:2] == ["00000.jpg", "00001.jpg"]
    # trainval annotated every 5th frame, test on every frame
    assert sorted(p.stem for p in (tv / "Annotations_Semantic" / seq.name).iterdir()) == ["00000", "00005", "00010"]
    assert len(list((test / "Annotations" / "v00").iterdir())) == tiny_config.frames
    mask = Image.open(tv / "Annotations_Semantic" / seq.name / "00005.png")
    assert mask.mode == "P" and mask.size == (tiny_config.size, tiny_config.size)
    assert Image.open(tv / "Annotations" / seq.name / "00005.png").mode == "P"


def test_generation_is_deterministic_by_seed(tmp_path):
    cfg = SynthConfig(sequences=2, frames=4, size=48, seed=11, test_sequences=1)
    a = generate_dataset(tmp_path / "a", cfg)
    b = generate_dataset(tmp_path / "b", cfg)
    c = generate_dataset(tmp_path / "c", SynthConfig(sequences=2, frames=4, size=48, seed=12, test_sequences=1))
    assert tree_digest(a) == tree_digest(b) != tree_digest(c)


def test_refuses_to_overwrite_and_leaves_no_partial_output(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        generate_dataset(tmp_path / "out", SynthConfig(sequences=2, frames=3, size=32))
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_looks_like_angiography(tiny_root):
    data = MOSXAV(tiny_root, "test", annotated_only=True)
    vessel_dark, background = [], []
    classes = set()
    for item in (data[i] for i in range(len(data))):
        sem = item["semantic"]
        classes |= set(np.unique(sem).tolist())
        if (sem == 1).sum() > 20:
            vessel_dark.append(item["image"][sem == 1].mean())
            background.append(item["image"][sem == 0].mean())
    assert vessel_dark, "vessels should be visible in some frames"
    assert np.mean(vessel_dark) < np.mean(background) - 10  # contrast-filled vessels are dark
    assert 1 in classes and classes <= set(range(6))
    assert (tiny_root / "contact_sheet.png").stat().st_size > 1000


def test_contrast_wash_in_changes_vessel_area_over_time(tiny_root):
    seq = MOSXAV(tiny_root, "test").sequences()[0]
    areas = [int((item["semantic"] == 1).sum()) for item in seq]
    assert max(areas) > 0 and len(set(areas)) > 3


def test_dataset_items_and_sequence_view(tiny_root, tiny_config):
    data = MOSXAV(tiny_root, "train")
    assert len(data) == len(data.sequence_names) * tiny_config.frames
    item = data[1]
    assert not item["annotated"] and item["frame_index"] == 1 and item["image"].dtype == np.uint8
    assert (item["semantic"] == IGNORE_INDEX).all() and (item["instance"] == IGNORE_INDEX).all()
    labeled = MOSXAV(tiny_root, "train", annotated_only=True)
    assert all(labeled[i]["annotated"] and (labeled[i]["semantic"] < IGNORE_INDEX).all() for i in range(len(labeled)))
    seqs = labeled.sequences()
    assert seqs[0].annotated_indices == [0, 5, 10]
    vos = MOSXAV(tiny_root, "val", task="vos", annotated_only=True)
    assert vos[0]["annotated"] and vos[0]["instance"].max() < IGNORE_INDEX
    with pytest.raises(ValueError, match="not in split"):
        MOSXAV(tiny_root, "train", sequences=["v99"])


def test_check_passes_on_clean_data(tiny_root):
    assert [p for p in check_dataset(tiny_root) if p.severity == "error"] == []


def test_check_lists_every_problem_with_its_file(tiny_copy, tiny_config):
    tv = tiny_copy / "trainval"
    seq = (tv / "ImageSets" / "train.txt").read_text().split()[0]
    sem = tv / "Annotations_Semantic" / seq
    (sem / "00000.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    write_semantic_mask(sem / "00005.png", np.full((10, 10), 1, np.uint8))  # wrong size
    bad = np.zeros((tiny_config.size, tiny_config.size), np.uint8)
    bad[0, 0] = 9
    write_index_mask(sem / "00010.png", bad)  # class id out of range
    (tv / "JPEGImages" / seq / "00003.jpg").unlink()  # missing frame
    with open(tv / "ImageSets" / "train.txt", "a") as handle:
        handle.write("v77\n")
    (tv / "ImageSets" / "val_first_mask.json").write_text("{not json")
    problems = [p for p in check_dataset(tiny_copy) if p.severity == "error"]
    text = "\n".join(str(p) for p in problems)
    assert "00000.png: unreadable image" in text
    assert "00005.png: mask is 10x10" in text
    assert "00010.png: ids [9] out of range" in text
    assert "missing frames ['00003']" in text
    assert "train.txt: names sequence 'v77'" in text
    assert "val_first_mask.json: malformed JSON" in text


def test_loader_errors_name_the_file(tiny_copy):
    tv = tiny_copy / "trainval"
    seq = (tv / "ImageSets" / "train.txt").read_text().split()[0]
    (tv / "Annotations_Semantic" / seq / "00005.png").write_bytes(b"garbage")
    data = MOSXAV(tiny_copy, "train", annotated_only=True, sequences=[seq])
    with pytest.raises(ValueError, match=rf"{seq}/00005.png: unreadable image"):
        data[1]


def test_check_reads_the_first_mask_file_the_dataset_reads(tiny_copy):
    """A first-mask file beside ImageSets (the layout's fallback) is checked too, not skipped."""
    from mosxav.data.layout import MosxavLayout

    tv = tiny_copy / "trainval"
    moved = tv / "val_first_mask.json"
    (tv / "ImageSets" / "val_first_mask.json").rename(moved)
    moved.write_text('{"videos": {"not-a-val-video": {"frames": {"00000": {"objects": ["1"]}}}}}')
    assert MosxavLayout(tiny_copy).first_mask_file("val") == moved
    problems = [str(p) for p in check_dataset(tiny_copy)]
    assert any("val_first_mask.json: video 'not-a-val-video' is not in val.txt" in p for p in problems)
