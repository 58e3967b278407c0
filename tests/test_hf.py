import datasets
import numpy as np
import pytest

from mosxav import MOSXAV
from mosxav.data.hf import export_hf, load_dataset


def test_load_local_root_keeps_mask_modes_and_ids(tiny_root):
    ds = load_dataset(str(tiny_root), task="semantic", split="val")
    ref = MOSXAV(tiny_root, "val")
    assert len(ds) == len(ref)
    row = ds[0]
    assert row["semantic"].mode == "P"
    assert np.array_equal(np.array(row["semantic"]), ref[0]["semantic"])
    assert ds.features["classes_present"].feature.names[1] == "vessel"
    assert ds[1]["semantic"] is None and ds[1]["annotated"] is False
    both = load_dataset(str(tiny_root), task="vos")
    assert isinstance(both, datasets.DatasetDict) and set(both) == {"train", "val", "test"}
    assert "instance" in both["test"].column_names


def test_export_round_trip_loads_offline(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = export_hf(tiny_root, tmp_path / "hf", task="semantic", max_shard_rows=10)
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "data/test-*.parquet" in card
    assert len(list((out / "data").glob("train-*.parquet"))) > 1  # sharded
    # A private cache: datasets keys a local folder's cache by its name and file names, so a shared one
    # could serve an earlier export of another tiny dataset.
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))
    direct = load_dataset(str(tiny_root), task="semantic")
    for split in ("train", "val", "test"):
        assert len(loaded[split]) == len(direct[split])
    a, b = loaded["test"][3], direct["test"][3]
    assert a["semantic"].mode == "P"
    assert np.array_equal(np.array(a["semantic"]), np.array(b["semantic"]))
    assert np.array_equal(np.array(a["image"]), np.array(b["image"]))


def test_named_mosxav_offline_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSXAV_HOME", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"mosxav-bench download .*root="):
        load_dataset("mosxav", split="train", offline=True)


def test_named_synthetic_is_generated_into_the_cache(tmp_path, monkeypatch):
    from mosxav.data.synth import defaults

    monkeypatch.setenv("MOSXAV_HOME", str(tmp_path / "cache"))
    small = defaults.SynthConfig(sequences=2, frames=6, size=32, seed=0, test_sequences=1)
    monkeypatch.setattr(defaults, "DEFAULT_SYNTH", small)
    ds = load_dataset("mosxav-synthetic", split="test")
    assert (tmp_path / "cache" / "mosxav-synthetic" / "test" / "ImageSets" / "test.txt").is_file()
    assert len(ds) == 6
    stamp = (tmp_path / "cache" / "mosxav-synthetic" / "synth_config.json").stat().st_mtime_ns
    load_dataset("mosxav-synthetic", split="test")  # reused, not regenerated
    assert (tmp_path / "cache" / "mosxav-synthetic" / "synth_config.json").stat().st_mtime_ns == stamp


def test_named_synthetic_made_by_an_older_generator_is_regenerated(tmp_path, monkeypatch):
    import json

    from mosxav.data.synth import defaults, writer

    monkeypatch.setenv("MOSXAV_HOME", str(tmp_path / "cache"))
    small = defaults.SynthConfig(sequences=2, frames=6, size=32, test_sequences=1)
    monkeypatch.setattr(defaults, "DEFAULT_SYNTH", small)
    load_dataset("mosxav-synthetic", split="test")
    stamp_path = tmp_path / "cache" / "mosxav-synthetic" / "synth_config.json"
    assert json.loads(stamp_path.read_text())["generator_version"] == writer.GENERATOR_VERSION
    monkeypatch.setattr(writer, "GENERATOR_VERSION", writer.GENERATOR_VERSION + 1)
    load_dataset("mosxav-synthetic", split="test")
    assert json.loads(stamp_path.read_text())["generator_version"] == writer.GENERATOR_VERSION


def test_export_keeps_what_the_video_evaluation_needs_and_a_card_for_the_hub(tiny_root, tmp_path):
    import json

    import yaml

    from mosxav.data.files import read_index_mask
    from mosxav.data.layout import MosxavLayout

    out = export_hf(tiny_root, tmp_path / "hf", task="vos")
    layout = MosxavLayout(tiny_root)
    for split in ("val", "test"):
        source = layout.first_mask_file(split)
        assert (out / "metadata" / source.name).read_bytes() == source.read_bytes()
    objects = json.loads((out / "metadata" / "objects.json").read_text())
    name = layout.sequences("test")[0]
    record = next(r for r in layout.frames("test", name) if r.instance_path is not None)
    instance, semantic = read_index_mask(record.instance_path), read_index_mask(record.semantic_path)
    for object_id, class_id in objects["test"][name].items():
        pixels = semantic[instance == int(object_id)]
        if pixels.size:
            assert np.bincount(pixels).argmax() == class_id  # the object's class, from the masks
    assert (out / "metadata" / "labels.json").is_file()
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "mit"  # a synthetic set is the toolkit's, not MOSXAV's CC BY-NC-SA
    assert front["pretty_name"] and front["size_categories"] == ["n<1K"] and "synthetic" in front["tags"]
    assert "@article{xi2025mosxav" in card and "arXiv:2507.16429" in card
    assert "Xi, Lin and Ma, Yingliang and Wang, Cheng and Howell, Sandra and Rinaldi, Aldo and Rhode, Kawal S." in card


def test_load_dataset_errors_are_one_clear_line(tiny_copy, tmp_path):
    """A mask of the wrong size is refused as MOSXAV refuses it, raised as the DataError naming the file
    (not wrapped in datasets' DatasetGenerationError), and split='validation' says what it is called."""
    from PIL import Image

    from mosxav.errors import DataError

    mask = next((tiny_copy / "test" / "Annotations_Semantic").glob("*/00000.png"))
    Image.new("L", (48, 48)).save(mask)
    with pytest.raises(DataError) as caught:
        load_dataset(str(tiny_copy), split="test", cache_dir=str(tmp_path / "cache"))
    assert caught.value.path == mask and "mask is 48x48 but its frame" in str(caught.value)
    with pytest.raises(ValueError, match="'validation' is 'val' here"):
        load_dataset(str(tiny_copy), split="validation")
    with pytest.raises(ValueError, match="'validation' is 'val' here"):
        MOSXAV(tiny_copy, "validation")
