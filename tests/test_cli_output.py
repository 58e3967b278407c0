"""What the command line prints is never cut: a path or a number survives a narrow terminal and a log,
and a reader that leaves early (``| head``) ends the command quietly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from test_leaderboard import erase_class, make_submission

from mosxav_leaderboard.board import build_table, submit
from mosxav_leaderboard.render import to_rich
from mosxav_leaderboard.store import Store

COMMAND = [sys.executable, "-m", "mosxav_leaderboard.command_line"]


def test_check_prints_whole_paths_in_a_log(tiny_copy, tmp_path):
    root = Path(shutil.move(str(tiny_copy), tmp_path / ("a-dataset-folder-with-a-long-name-" + "x" * 50)))
    broken = next((root / "test" / "Annotations_Semantic").iterdir()) / "00000.png"
    broken.write_bytes(b"not a png")
    run = subprocess.run([*COMMAND, "check", str(root)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert str(broken) in run.stdout, run.stdout  # the whole path on one line of the log


def test_leaderboard_numbers_survive_an_80_column_terminal(tiny_root, tmp_path):
    store = Store(tmp_path / "lb.sqlite")
    for k, every in enumerate((1, 2, 3)):
        folder = make_submission(
            tiny_root, tmp_path / f"s{k}", method=f"a-rather-long-method-name-{k}", damage=erase_class(2, every=every)
        )
        submit(folder, tiny_root, store)
    table, _ = build_table(store)
    terminal = Console(width=80, record=True, force_terminal=True, color_system=None)
    terminal.print(to_rich(table))
    text = terminal.export_text()
    for dice, low, high in zip(table["dice"], table["dice_lo"], table["dice_hi"], strict=True):
        assert f"{dice:.3f}" in text and f"[{low:.3f}, {high:.3f}]" in text, text
    assert "…" not in text


def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path):
    process = subprocess.Popen(
        [*COMMAND, "leaderboard", "--db", str(tmp_path / "lb.sqlite"), "--format", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before the first line is written
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_every_option_says_what_it_is_and_the_version_is_printed(capsys):
    import argparse

    import pytest

    from mosxav import toolkit_version
    from mosxav_leaderboard.command_line import build_parser, main

    def undocumented(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += undocumented(sub, f"{prefix}{name} ")
            elif action.help is None:
                found.append(f"{prefix}{action.option_strings or action.dest}")
        return found

    assert undocumented(build_parser()) == []
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"mosxav-bench {toolkit_version()}"
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    assert "(default: 45)" in capsys.readouterr().out  # defaults shown
    with pytest.raises(SystemExit) as refused:
        main(["run", "--jobs", "0"])
    assert refused.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_evaluate_takes_its_inputs_as_positionals_and_export_hf_refuses_to_overwrite(tiny_root, tmp_path):
    from mosxav_leaderboard.command_line import main

    folder = make_submission(tiny_root, tmp_path / "sub")
    out = tmp_path / "scores.csv"
    assert main(["evaluate", str(tiny_root), str(folder / "predictions"), "--split", "test", "--out", str(out)]) == 0
    assert out.is_file()
    taken = tmp_path / "hf"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    assert main(["export-hf", str(tiny_root), "--out", str(taken)]) == 2
    assert (taken / "keep.txt").read_text() == "mine"


def test_install_combines_extras(tmp_path):
    """bash scripts/install.sh --serve --test installs both extras (it installed the first only)."""
    import os
    import stat

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "scripts" / "install.sh", repo / "scripts")
    fake = repo / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls.log"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    run = subprocess.run(
        ["bash", str(repo / "scripts" / "install.sh"), "--serve", "--test"], env=os.environ, timeout=60
    )
    assert run.returncode == 0
    assert "-m pip install -q -e .[serve,test]" in (tmp_path / "calls.log").read_text()


def test_the_load_benchmark_needs_no_pytest():
    """bench/serve_load.py runs with the serve extra alone: nothing it imports needs pytest."""
    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys, runpy; sys.modules['pytest'] = None; sys.argv = ['serve_load.py', '--help']; "
        f"runpy.run_path({str(root / 'bench' / 'serve_load.py')!r}, run_name='__main__')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "usage" in run.stdout, run.stderr[-2000:]


def test_a_password_in_the_database_url_is_warned_of(capsys):
    from mosxav_leaderboard.command_line import main

    assert main(["admin", "--db", "postgresql://lb:secret@127.0.0.1:9/lb", "list-teams"]) == 2  # nothing there
    err = capsys.readouterr().err
    assert "visible to every user of this machine (ps)" in err and "PGPASSWORD" in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]  # one line, no traceback
    assert "could not open the database" in line and "Traceback" not in err and "secret" not in line
