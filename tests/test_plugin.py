"""docs/methods.md's plugin, built from the page's own code blocks in a temporary folder, installed
(pip, no network) and run beside a baseline: the guide a newcomer follows is the code that works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FILE_BLOCK = re.compile(r"```(?:python|toml)\n# file: (?P<path>\S+)\n(?P<body>.*?)```", re.DOTALL)


def plugin_files() -> dict[str, str]:
    """The files the guide's code blocks define (``# file: PATH`` on their first line)."""
    text = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(text)}


def test_the_guides_blocks_define_a_whole_package():
    assert set(plugin_files()) == {"pyproject.toml", "mosxav_entmin/__init__.py", "mosxav_entmin/method.py"}


@pytest.mark.slow
def test_the_guides_plugin_installs_registers_and_runs_beside_the_baselines(tiny_root, tmp_path):
    package = tmp_path / "mosxav-entmin"
    for name, body in plugin_files().items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(body, encoding="utf-8")
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*install, "--target", str(site), str(package)], check=True, timeout=300, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "mosxav_leaderboard.command_line"]

    listed = subprocess.run(
        [*cli, "methods", "entropy_min", "--format", "json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    (info,) = yaml.safe_load(listed.stdout)
    assert info["distribution"] == "mosxav-entmin" and not info["built_in"]
    assert info["options"]["entropy_weight"] == 0.1 and info["zero_unlabeled"] == {"entropy_weight": 0.0}

    config = {
        "dataset": {"root": str(tiny_root)},
        "size": 32,
        "methods": ["supervised", "entropy_min"],
        "labeled_fractions": [0.5],
        "seeds": [0],
        "model": {"width": 4, "depth": 2},
        "train": {"iterations": 4, "batch_size": 2, "unlabeled_batch_size": 2, "val_every": 2, "log_every": 1},
        "method_options": {"entropy_min": {"entropy_weight": 0.3}},
        "overlays": 0,
        "leaderboard": False,
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [*cli, "run", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "out"), "--jobs", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    frames = pd.read_csv(tmp_path / "out" / "per_frame.csv")
    assert set(frames["method"]) == {"supervised", "entropy_min"}
    training = pd.read_csv(tmp_path / "out" / "training.csv").set_index("method")
    assert training.loc["entropy_min", "unlabeled_share_run"] > 0 == training.loc["supervised", "unlabeled_share_run"]
    assert "entropy_min" in (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
