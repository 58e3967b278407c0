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
