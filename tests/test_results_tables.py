"""Every results table in README.md and docs/ is what scripts/results_tables.py makes from the raw
results committed under results/: a hand-edited number, or a result committed without its table, fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_committed_tables_are_what_the_committed_results_make():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "results_tables.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_check_fails_on_a_hand_edited_table_and_the_command_rewrites_it(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    import results_tables

    page = tmp_path / "page.md"
    page.write_text("text\n<!-- table: coverage -->\n| 6 | 0.99 |\n<!-- /table -->\nmore\n", encoding="utf-8")
    monkeypatch.setattr(results_tables, "PAGES", [page])
    monkeypatch.setattr(results_tables, "ROOT", tmp_path)
    monkeypatch.setitem(results_tables.TABLES, "coverage", lambda: "| 6 | 0.94 |\n")
    monkeypatch.setattr(sys, "argv", ["results_tables.py", "--check"])
    assert results_tables.main() == 1 and "0.99" in page.read_text(encoding="utf-8")  # --check changes nothing
    monkeypatch.setattr(sys, "argv", ["results_tables.py"])
    assert results_tables.main() == 0
    assert page.read_text(encoding="utf-8") == "text\n<!-- table: coverage -->\n| 6 | 0.94 |\n<!-- /table -->\nmore\n"
    monkeypatch.setattr(sys, "argv", ["results_tables.py", "--check"])
    assert results_tables.main() == 0


def test_a_measured_number_written_by_hand_in_a_results_page_fails_the_check(tmp_path, monkeypatch):
    """A results paragraph that quotes a number the tables no longer hold (the prose said -0.011 after the
    raw Dice changed) fails: measured numbers belong in generated blocks, made with their tables."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import results_tables

    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "results.md"
    page.write_text("<!-- text: reading -->\nA gap of -0.011.\n<!-- /text -->\nIt stays 0.5 T.\n", encoding="utf-8")
    monkeypatch.setattr(results_tables, "PAGES", [page])
    monkeypatch.setattr(results_tables, "ROOT", tmp_path)
    monkeypatch.setattr(results_tables, "PROSE_CHECKED", ("docs/results.md",))
    monkeypatch.setitem(results_tables.TABLES, "reading", lambda: "A gap of -0.011.\n")
    monkeypatch.setattr(sys, "argv", ["results_tables.py", "--check"])
    assert results_tables.main() == 0  # the number lives in its generated block
    page.write_text(page.read_text(encoding="utf-8") + "As said, the gap is -0.011.\n", encoding="utf-8")
    assert results_tables.main() == 1


@pytest.mark.slow
def test_what_travels_between_machines_the_untrained_floor_scores_as_committed(tmp_path, monkeypatch):
    """A trained cell's scores differ between CPUs (docs/benchmarks.md); what must not is the data, the
    metrics and the untrained floor: top-hat + Otsu on the embedded default scores, frame by frame, what
    the committed default run holds (made on another machine than CI's)."""
    import gzip

    import pandas as pd
    import yaml

    from mosxav_leaderboard.command_line import main

    monkeypatch.setenv("MOSXAV_HOME", str(tmp_path / "home"))  # the default generated afresh, as on a new machine
    config = tmp_path / "floor.yaml"
    config.write_text(yaml.safe_dump({"methods": ["tophat_otsu"], "overlays": 0, "leaderboard": False}))
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "floor"), "--jobs", "1"]) == 0
    ours = pd.read_csv(tmp_path / "floor" / "per_frame.csv", dtype={"frame": str, "sequence": str})
    with gzip.open(ROOT / "results" / "default" / "per_frame.csv.gz", "rt") as handle:
        committed = pd.read_csv(handle, dtype={"frame": str, "sequence": str})
    committed = committed[committed["method"] == "tophat_otsu"].reset_index(drop=True)
    for column in ("sequence", "frame", "class_id", "evaluated"):
        assert ours[column].tolist() == committed[column].tolist(), column
    for column in ("dice", "iou", "hd95", "assd", "nsd"):
        assert ours[column].to_numpy() == pytest.approx(committed[column].to_numpy(), abs=2e-6), column
