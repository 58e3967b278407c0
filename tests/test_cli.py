import subprocess
import sys

import numpy as np
import pandas as pd

from mosxav.data.files import write_semantic_mask
from mosxav_leaderboard.command_line import main


def test_synth_check_and_semantic_evaluate(tmp_path, capsys):
    root = tmp_path / "syn"
    assert main(["synth", "--out", str(root), "--sequences", "2", "--frames", "6", "--size", "48", "--seed", "5"]) == 0
    assert main(["check", str(root)]) == 0
    pred = tmp_path / "pred"
    for seq in (root / "test" / "Annotations_Semantic").iterdir():
        for png in seq.iterdir():
            write_semantic_mask(pred / seq.name / png.name, np.zeros((48, 48), np.uint8))
    out = tmp_path / "res.csv"
    assert main(["evaluate", "--gt", str(root), "--split", "test", "--pred", str(pred), "--out", str(out)]) == 0
    summary = pd.read_csv(out)
    assert summary.set_index("class").loc["mean", "dice"] == 0.0  # an empty prediction scores nothing
    frames = pd.read_csv(tmp_path / "res_per_frame.csv")
    assert {"sequence", "frame", "class", "dice", "hd95", "nsd", "capped"} <= set(frames.columns)
    assert (tmp_path / "res_per_sequence.csv").is_file()


def test_evaluate_lists_every_problem_of_the_predictions_and_scores_nothing(tmp_path, capsys):
    """It stopped at the first problem; like submit, it now lists them all (exit 1) and writes nothing."""
    for frame in ("00000", "00001", "00002"):
        write_semantic_mask(tmp_path / "gt" / "v00" / f"{frame}.png", np.zeros((8, 8), np.uint8))
    write_semantic_mask(tmp_path / "pred" / "v00" / "00000.png", np.zeros((8, 8), np.uint8))
    args = ["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred"), "--out", str(tmp_path / "r.csv")]
    assert main(args) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "predictions not scored: 2 problem(s)" in out and "v00/00001.png" in out and "v00/00002.png" in out
    assert not (tmp_path / "r.csv").exists()
    write_semantic_mask(tmp_path / "pred" / "v00" / "00001.png", np.zeros((9, 8), np.uint8))
    write_semantic_mask(tmp_path / "pred" / "v00" / "00002.png", np.full((8, 8), 9, np.uint8))
    assert main(args) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "v00/00001.png" in out and "ids [9] out of range" in out


def test_errors_are_one_readable_line(tmp_path, capsys):
    args = ["evaluate", str(tmp_path / "no-gt"), str(tmp_path / "pred"), "--out", str(tmp_path / "r.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "no-gt" in err and "Traceback" not in err
    assert not (tmp_path / "r.csv").exists()


def test_check_exit_code_on_broken_data(tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty")]) == 1  # it ran and found problems
    assert main(["check", str(tmp_path / "nowhere")]) == 2  # nothing to check: it could not run


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "mosxav_leaderboard.command_line", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "synth" in result.stdout and "evaluate" in result.stdout


def test_serve_without_the_extra_says_which_to_install(tmp_path, capsys, monkeypatch):
    import importlib.util

    from mosxav_leaderboard.command_line import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    assert main(["serve", "--gt", str(tmp_path)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "[serve] extra" in said and "install.sh --serve" in said and "Traceback" not in said


def test_a_wrongly_registered_method_is_an_error_line_not_a_traceback(tiny_root, tmp_path, capsys, monkeypatch):
    from importlib.metadata import EntryPoint

    import yaml

    from mosxav.training import protocol

    broken = EntryPoint(name="broken", value="pathlib:Path", group=protocol.ENTRY_POINT_GROUP)
    monkeypatch.setattr(protocol, "_registered", lambda: (broken,))
    config = {
        "dataset": {"root": str(tiny_root)},
        "size": 32,
        "methods": ["broken"],
        "seeds": [0],
        "method_options": {},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "out")]) == 2
    printed = " ".join(capsys.readouterr().err.split())
    assert "entry point 'broken' does not name a mosxav.training.Method subclass" in printed


def test_every_exit_code_is_the_one_the_readme_states():
    from pathlib import Path

    from mosxav_leaderboard.cli.common import ExitCode

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    stated = readme[readme.index("Exit codes:") :].split(". The commands live")[0]
    for code in ExitCode:
        assert f" {code.value} " in stated, (code, stated)
    assert "ExitCode" in (Path(__file__).parents[1] / "leaderboard" / "command_line.py").read_text()


def test_outputs_are_out_and_inputs_positional():
    from mosxav_leaderboard.command_line import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name in ("synth", "merge", "export-hf", "run", "evaluate", "leaderboard"):
        options = {o for action in commands[name]._actions for o in action.option_strings}
        positionals = [a.dest for a in commands[name]._actions if not a.option_strings]
        assert "--out" in options and "out" not in positionals, name


def test_a_missing_run_a_file_for_out_and_an_unreachable_server_are_one_line_and_exit_2(tmp_path, capsys):
    """They printed tracebacks and exited 1."""
    import socket

    assert main(["compare", str(tmp_path / "no-run"), "--reference", "supervised"]) == 2
    assert "no-run: no such folder" in " ".join(capsys.readouterr().err.split())
    (tmp_path / "unfinished").mkdir()
    assert main(["compare", str(tmp_path / "unfinished"), "--reference", "supervised"]) == 2
    assert "not a finished run folder" in " ".join(capsys.readouterr().err.split())
    (tmp_path / "a-file").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "a-file"), "--sequences", "2", "--frames", "3", "--size", "32"]) == 2
    assert "exists and is a file, not a folder" in " ".join(capsys.readouterr().err.split())
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    submission = tmp_path / "sub"
    submission.mkdir()
    assert main(["submit", str(submission), "--server", f"http://127.0.0.1:{port}", "--token", "t"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"http://127.0.0.1:{port}/: could not reach the server" in err and "Traceback" not in err
