"""scripts/study.py names a committed shard by its cell's index in the config's matrix: a config that gains
a seed renumbers the matrix, so a run must refuse shards that are not its cells (it would skip cells it
never trained) and ``--renumber`` must move every shard, with its CSV rows, to its cell's new number."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study_script():
    sys.path.insert(0, str(ROOT / "scripts"))
    import study

    return study


def _cells(tmp_path: Path, seeds: list[int]):
    from mosxav.harness.config import load_config
    from mosxav.harness.run import matrix

    path = tmp_path / f"config-{'-'.join(map(str, seeds))}.yaml"
    path.write_text(f"methods: [supervised, fully_supervised]\nseeds: {seeds}\n")
    return matrix(load_config(path))


def _commit(study: Path, cells) -> None:
    """A study as study.py leaves it: one shard per cell (here holding its tag), a provenance.csv row
    and a training.csv row each."""
    (study / "shards").mkdir(parents=True)
    for name, extra in (("provenance.csv", "commit"), ("training.csv", "best_step")):
        with open(study / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["shard", "cell", extra])
            writer.writerows([k, cell.tag, "x"] for k, cell in enumerate(cells))
    for k, cell in enumerate(cells):
        (study / "shards" / f"{k:04d}.csv.gz").write_text(cell.tag)


def _shard_column(path: Path) -> dict[str, int]:
    with open(path, newline="") as handle:
        return {row["cell"]: int(row["shard"]) for row in csv.DictReader(handle)}


def test_a_config_with_another_seed_is_refused_until_the_shards_are_renumbered(tmp_path, study_script):
    old, new = _cells(tmp_path, [0, 1]), _cells(tmp_path, [0, 1, 2])
    study = tmp_path / "results" / "study"
    _commit(study, old)
    assert study_script.misplaced(old, study_script.committed_cells(study)) == []
    wrong = study_script.misplaced(new, study_script.committed_cells(study))
    assert wrong and "holds fully_supervised/frac1/noise0/seed0" in wrong[0]

    assert study_script.renumber(study, new) == 2  # fully_supervised's two seeds move up by one
    assert study_script.misplaced(new, study_script.committed_cells(study)) == []
    index = {cell.tag: k for k, cell in enumerate(new)}
    for cell in old:
        assert (study / "shards" / f"{index[cell.tag]:04d}.csv.gz").read_text() == cell.tag
    for name in ("provenance.csv", "training.csv"):
        assert _shard_column(study / name) == {cell.tag: index[cell.tag] for cell in old}
    missing = {new[k].tag for k in range(len(new)) if not (study / "shards" / f"{k:04d}.csv.gz").exists()}
    assert missing == {"supervised/frac0.05/noise0/seed2", "fully_supervised/frac1/noise0/seed2"}


def test_renumbering_refuses_and_changes_nothing_when_a_committed_cell_left_the_config(tmp_path, study_script):
    old = _cells(tmp_path, [0, 1])
    study = tmp_path / "results" / "study"
    _commit(study, old)
    before = {p.name: p.read_text() for p in study.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit, match="committed cells the config no longer has: .*seed0"):
        study_script.renumber(study, _cells(tmp_path, [1, 2]))
    assert {p.name: p.read_text() for p in study.rglob("*") if p.is_file()} == before
