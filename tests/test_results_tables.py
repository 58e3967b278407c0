"""Every results table in README.md and docs/ is what scripts/results_tables.py makes from the raw
results committed under results/: a hand-edited number, or a result committed without its table, fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
