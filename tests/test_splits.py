import pytest

from mosxav.data.layout import MosxavLayout
from mosxav.data.splits import Partition, make_partition


@pytest.fixture
def train_records(tiny_root):
    layout = MosxavLayout(tiny_root)
    return [r for s in layout.sequences("train") for r in layout.frames("train", s)]


def test_partitions_are_deterministic_and_nested(train_records):
    small = make_partition(train_records, fraction=0.25, seed=1)
    large = make_partition(train_records, fraction=0.75, seed=1)
    again = make_partition(train_records, fraction=0.25, seed=1)
    other = make_partition(train_records, fraction=0.25, seed=2)
    assert small.labeled == again.labeled
    assert set(small.labeled) < set(large.labeled)
    assert small.labeled != other.labeled or len(small.labeled) == 1
    annotated = {f"{r.sequence}/{r.stem}" for r in train_records if r.semantic_path}
    assert set(large.labeled) <= annotated


def test_sequence_level_partition_labels_whole_sequences(train_records):
    part = make_partition(train_records, count=1, unit="sequence", seed=0)
    sequences = {fid.split("/")[0] for fid in part.labeled}
    assert len(sequences) == 1
    n_annotated = sum(1 for r in train_records if r.sequence in sequences and r.semantic_path)
    assert len(part.labeled) == n_annotated


def test_yaml_round_trip(train_records, tmp_path):
    part = make_partition(train_records, fraction=0.5, seed=4)
    path = part.to_yaml(tmp_path / "p.yaml")
    assert "labeled:" in path.read_text()
    assert Partition.from_yaml(path) == part


def test_bad_partition_files_are_refused(tmp_path):
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="unsafe.yaml: malformed YAML"):
        Partition.from_yaml(unsafe)
    partial = tmp_path / "partial.yaml"
    partial.write_text("split: train\nunit: frame\n")
    with pytest.raises(ValueError, match="partial.yaml: a partition needs"):
        Partition.from_yaml(partial)


def test_invalid_requests(train_records):
    with pytest.raises(ValueError):
        make_partition(train_records)
    with pytest.raises(ValueError):
        make_partition(train_records, fraction=1.5)
    with pytest.raises(ValueError, match="cannot label"):
        make_partition(train_records, count=10_000)
