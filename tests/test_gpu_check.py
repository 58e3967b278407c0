"""scripts/gpu_check.py's per-method check, run on the CPU at a toy size: a GPU session has minutes, so
the script's wiring (config, method options, trainer, figures) must not first break there."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest

from mosxav.data.synth import SynthConfig, generate_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["supervised", "diffproto"])
def test_check_method_reports_finite_figures_on_cpu(tmp_path: Path, name: str) -> None:
    gpu_check = _load_script()
    config = gpu_check.load_config(gpu_check.PAPER)
    train = dataclasses.replace(config.train, compile=False, amp=False, batch_size=2, unlabeled_batch_size=2)
    config = dataclasses.replace(config, size=32, train=train, model=dataclasses.replace(config.model, width=8))
    root = generate_dataset(tmp_path / "synth", SynthConfig(sequences=4, frames=11, size=32, seed=0, test_sequences=1))
    row = gpu_check.check_method(name, config, root, 4, tmp_path / "work", device="cpu")
    assert row["method"] == name and row["steps"] == 4
    assert row["frames_per_s"] > 0 and row["batch_ms"] > 0
    assert 0 <= row["batch_share"] < 10  # of one step's time: near 0 on a CPU, where the step dominates
    assert math.isnan(row["peak_GiB"])  # GPU memory only
    assert math.isfinite(row["last_loss"])
    table = gpu_check.results_table([row]).splitlines()
    assert table[0].startswith("| method | steps |") and table[0].endswith("| last loss |")
    assert table[2].startswith(f"| {name} | 4 |") and f"{row['batch_ms']} (" in table[2]
