"""The semi-supervised study's tables once every cell is in (scripts/ssl_tables.py): ranks, verdicts read
in their family, the prototype verdict and the reading. The committed study is still running, so this
path is exercised on a finished study simulated from one committed cell."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results" / "ssl"
#: True gains on every Dice over supervised in the simulated study; every other method gains nothing.
GAINS = {"fully_supervised": 0.06, "bcp": 0.05}
SEMI_SUPERVISED = 8


@pytest.fixture(scope="module")
def ssl_tables():
    sys.path.insert(0, str(ROOT / "scripts"))
    import ssl_tables

    return ssl_tables


@pytest.fixture(scope="module")
def finished(tmp_path_factory, ssl_tables) -> Path:
    """results/ as it will stand with all 50 cells of the study: the committed config, and each cell the
    committed supervised seed-0 cell moved by its method's gain, a training effect and a (training,
    sequence) effect."""
    root = tmp_path_factory.mktemp("results")
    study = root / "ssl"
    (study / "shards").mkdir(parents=True)
    shutil.copy(COMMITTED / "config.yaml", study / "config.yaml")
    template = pd.read_csv(COMMITTED / "shards" / "0000.csv.gz", dtype={"frame": str, "sequence": str})
    sequences = sorted(template["sequence"].unique())
    rng = np.random.default_rng(0)
    training = []
    for index, (method, seed) in enumerate(ssl_tables._design(root)):
        by_sequence = dict(zip(sequences, rng.normal(0, 0.03, len(sequences)), strict=True))
        shift = GAINS.get(method, 0.0) + rng.normal(0, 0.002) + template["sequence"].map(by_sequence)
        cell = template.assign(dice=np.clip(template["dice"] + shift, 0, 1), method=method, seed=seed)
        cell.to_csv(study / "shards" / f"{index:04d}.csv.gz", index=False)
        share = 0.0 if method in ("supervised", "fully_supervised") else 0.05
        training.append(
            {
                "shard": index,
                "cell": f"{method}/frac0.05/noise0/seed{seed}",
                "best_val_dice": 0.5,
                "best_step": 800,
                "unlabeled_share_run": share,
                "unlabeled_share_end": share,
            }
        )
    pd.DataFrame(training).to_csv(study / "training.csv", index=False)
    return root


def _rows(table: str) -> dict[str, list[str]]:
    """A Markdown table's rows by their method (second column)."""
    lines = [line for line in table.splitlines() if line.startswith("|")][2:]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {row[1]: row for row in cells}


def test_a_finished_study_ranks_and_reads_each_comparison_in_its_family(finished, ssl_tables):
    table = ssl_tables.comparisons_table(finished)
    assert "incomplete" not in table and "p (Holm)" in table
    rows = _rows(table)
    bcp, supervised = rows["BCP"], rows["supervised (labeled frames only)"]
    assert bcp[0] == "1" and bcp[-1] == "better" and float(bcp[5]) <= 0.05
    assert supervised[0] == "2"  # BCP is better (Holm over the 36 pairs of the 9 ranked methods)
    nulls = [rows[ssl_tables.NAMES[m]] for m in ("mean_teacher", "ua_mt", "cps", "fixmatch", "diffproto")]
    assert all(row[0] in ("1", "2") and row[-1] == "no detectable effect" for row in nulls)  # none split apart
    p, holm_p = (float(bcp[i].replace("< ", "")) for i in (4, 5))
    assert holm_p >= p  # adjusted over the family of the 8 semi-supervised methods
    assert float(bcp[7]) > float(bcp[6])  # the MDE at 0.05 / 8 exceeds the MDE alone
    assert rows["fully supervised (every label: the control)"][5] == "(the control)"

    reading = ssl_tables.reading(finished)
    assert "In progress" not in reading and "better: BCP (+0.0" in reading
    assert "The comparisons' median MDE is" in reading
    summary = ssl_tables.summary(finished)
    assert "Better than supervised on the vessel Dice by the rule: BCP" in summary
    assert "DiffProto − supervised" in summary and "(no detectable effect)" in summary
    assert "At the full design (5 seeds x 32 sequences) the control is +0.0" in summary
    assert ": detected." in summary
    assert "Its prototype term (DiffProto − DiffProto without prototypes" in summary


def test_a_finished_study_gives_the_prototype_verdict_on_both_endpoints(finished, ssl_tables):
    table = ssl_tables.arms_table(finished)
    assert "incomplete" not in table
    verdicts = [line for line in table.splitlines() if line.startswith("| DiffProto − DiffProto without")]
    assert len(verdicts) == 2 and all("no detectable effect" in line for line in verdicts)


def test_a_method_not_yet_complete_counts_in_the_family_as_p_1(ssl_tables):
    class Result:
        def __init__(self, p: float) -> None:
            self.p = p

    found = [("fully_supervised", Result(1e-6)), ("bcp", Result(0.01))]
    found += [(f"m{i}", None) for i in range(SEMI_SUPERVISED - 1)]
    assert ssl_tables.family_p(found) == {"bcp": pytest.approx(0.08)}  # 8 x 0.01: never easier than at the end


def test_a_study_above_its_power_goal_says_how_many_seeds_the_goal_takes(finished, ssl_tables):
    """The projection from the comparisons' own variance components (here their MDE is under the goal at
    5 seeds, so the finished study says nothing of it; read directly, it counts fewer)."""
    frames = ssl_tables._frames(finished)
    methods = [m for m in ssl_tables.NAMES if m not in (ssl_tables.REFERENCE, ssl_tables.CONTROL)]
    text = ssl_tables._replan(frames, finished, methods)
    needed = re.search(r"reaches 0.03 at (\d+) seeds", text)
    assert "the gate planned" in text and needed and 2 <= int(needed.group(1)) <= 5, text
    assert "Why above the goal" not in ssl_tables.reading(finished)


def test_diffproto_s_verdicts_carry_the_finished_study(finished, ssl_tables, monkeypatch):
    """docs/diffproto.md's verdict reading gains the study's prototype verdict and supervised bound, with
    its control's state, once the cells are in."""
    import results_tables

    monkeypatch.setattr(results_tables, "RESULTS", finished)
    results_tables._design.cache_clear()
    try:
        text = results_tables._headroom_verdicts()
    finally:
        results_tables._design.cache_clear()
    assert "In the semi-supervised study (5 % labels, 5 seeds, the positive control detected)" in text
    assert "the prototype term is" in text and "no detectable effect" in text
    assert "not below supervised" in text
