"""scripts/gpu_check.py run on the CPU at a toy size: a GPU session has minutes, so the script's wiring
(config, method options, trainer, figures, the worker processes and their turns) must not first break there."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mosxav.data.synth import SynthConfig, generate_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def _toy_root(tmp_path: Path) -> Path:
    """A synthetic MOSXAV at 32 px: four sequences of 11 frames, one of them test."""
    return generate_dataset(tmp_path / "synth", SynthConfig(sequences=4, frames=11, size=32, seed=0, test_sequences=1))


def _toy_config(path: Path) -> Path:
    """configs/paper.yaml at 32 px, width 8, batch 2 + 2, eager and float32: seconds on a CPU."""
    config = yaml.safe_load((SCRIPT.parents[1] / "configs" / "paper.yaml").read_text())
    config["size"] = 32
    config["model"] = {"width": 8, "depth": 4}
    config["train"].update(batch_size=2, unlabeled_batch_size=2, amp=False, compile=False)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("name", ["supervised", "diffproto"])
def test_check_method_reports_finite_figures_on_cpu(tmp_path: Path, name: str) -> None:
    gpu_check = _load_script()
    config = gpu_check.load_config(_toy_config(tmp_path / "toy.yaml"))
    root = _toy_root(tmp_path)
    row = gpu_check.check_method(name, config, root, 4, tmp_path / "work", device="cpu")
    assert row["method"] == name and row["steps"] == 4
    assert row["warm_up_s"] >= row["first_step_s"] >= 0  # tenths of a second: a toy step rounds to 0
    assert row["frames_per_s"] > 0 and row["batch_ms"] > 0
    assert 0 <= row["batch_share"] < 10  # of one step's time: near 0 on a CPU, where the step dominates
    assert math.isnan(row["peak_GiB"])  # GPU memory only
    assert math.isfinite(row["last_loss"])
    table = gpu_check.results_table([row]).splitlines()
    assert table[0].startswith("| method | steps | warm-up s (first step) |") and table[0].endswith("| last loss |")
    assert table[2].startswith(f"| {name} | 4 | {row['warm_up_s']} ({row['first_step_s']}) |")
    assert f"{row['batch_ms']} (" in table[2]


@pytest.mark.slow
def test_check_methods_warms_workers_together_then_measures_each_alone(tmp_path: Path) -> None:
    """Two batches of worker processes (jobs=2, three methods): every method reports its row in order,
    and a worker that dies (an unknown method) is one failure line with its error, not the check's end."""
    gpu_check = _load_script()
    root = _toy_root(tmp_path)
    names = ["supervised", "no_such_method", "mean_teacher"]
    waits = []  # the DDP run's end, awaited once before the first measured steps
    rows, failures = gpu_check.check_methods(
        names,
        _toy_config(tmp_path / "toy.yaml"),
        root,
        5,
        tmp_path / "work",
        "cpu",
        2,
        before_measuring=lambda: waits.append(1),
    )
    assert waits == [1]
    assert [r["method"] for r in rows] == ["supervised", "mean_teacher"]
    assert all(r["steps"] == 5 and r["frames_per_s"] > 0 and math.isfinite(r["last_loss"]) for r in rows)
    assert len(failures) == 1 and failures[0].startswith("no_such_method: warm-up: no_such_method: exited 1")
    assert "no_such_method" in failures[0].split("exited 1", 1)[1]  # the worker's own error, from its log
    for name in ("supervised", "mean_teacher"):  # warm-up steps, then the measured ones, in one log
        steps = [r["step"] for r in map(json.loads, (tmp_path / "work" / name / "metrics.jsonl").open()) if "loss" in r]
        assert steps == [1, 2, 3, 4, 5]


def test_worker_that_never_gets_warm_times_out(tmp_path: Path) -> None:
    """A warm-up deadline that has passed: the worker is stopped and named, and nothing hangs."""
    gpu_check = _load_script()
    root = _toy_root(tmp_path)
    start = time.monotonic()
    rows, failures = gpu_check.check_methods(
        ["supervised"], _toy_config(tmp_path / "toy.yaml"), root, 5, tmp_path / "work", device="cpu", warm_timeout_s=0.5
    )
    assert rows == [] and failures == ["supervised: warm-up: supervised: no GPU_CHECK_READY in time"]
    assert time.monotonic() - start < 30


def test_worker_whose_parent_is_gone_stops_after_warm_up(tmp_path: Path) -> None:
    """stdin at its end before the go: the worker says READY, measures nothing and exits 1 (no orphan
    holding a GPU)."""
    root = _toy_root(tmp_path)
    command = [sys.executable, str(SCRIPT), "--worker", "supervised", "--config", str(_toy_config(tmp_path / "t.yaml"))]
    command += ["--root", str(root), "--work", str(tmp_path / "work"), "--steps", "5", "--device", "cpu"]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stdout.startswith("GPU_CHECK_READY {") and "GPU_CHECK_ROW" not in done.stdout


@pytest.mark.slow
def test_ddp_run_in_the_background_reports_ok_or_its_failure(tmp_path: Path) -> None:
    """The harness's two DDP steps (torchrun, one gloo process on the CPU, 32 px): ok; on a dataset root
    that is not there the run fails and the failure carries the harness's own error."""
    gpu_check = _load_script()
    root = _toy_root(tmp_path)
    ddp = gpu_check.DDPRun(root, tmp_path, 1, size=32)
    ddp.end()
    ddp.end()  # once only
    assert ddp.line == "two DDP steps on 1 GPU(s): ok" and ddp.failure is None
    assert (tmp_path / "ddp" / "summary.csv").is_file()
    (tmp_path / "bad").mkdir()
    failed = gpu_check.DDPRun(tmp_path / "no_such_root", tmp_path / "bad", 1, size=32)
    failed.end()
    assert failed.line == "two DDP steps on 1 GPU(s): FAILED"
    assert failed.failure.startswith("DDP: run failed (exit 1)") and "no_such_root" in failed.failure


def test_compile_threads_share_twice_the_cores_out() -> None:
    gpu_check = _load_script()
    assert gpu_check.compile_threads(9, cores=16) == 4  # the GPU machines: nine methods, 36 workers
    assert gpu_check.compile_threads(1, cores=16) == 16  # one process: all cores, as inductor does
    assert gpu_check.compile_threads(2, cores=2) == 2
    assert gpu_check.compile_threads(40, cores=16) == 1
