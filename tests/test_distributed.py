"""Two CPU processes under torchrun (gloo) train with DDP and end with the same weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def run_two_ranks(out: Path, mode: str) -> subprocess.CompletedProcess:
    """tests/ddp_worker.py under torchrun with two CPU (gloo) ranks, writing into ``out``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent.parent)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*torchrun, str(WORKER), str(out), mode], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("method_name", ["supervised", "mean_teacher"])
def test_two_gloo_ranks_agree_on_the_final_weights(tmp_path, method_name):
    result = run_two_ranks(tmp_path, method_name)
    assert result.returncode == 0, result.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert info[0]["world_size"] == 2
    for step in range(4):  # each rank drew its own half of the global batch
        assert not set(info[0]["batches"][step]) & set(info[1]["batches"][step])
    assert (tmp_path / "work" / "last.pt").is_file()


def test_prototypes_under_ddp_are_those_of_the_global_batch(tmp_path):
    """Each rank updates from its half; the class sums are reduced first, so both ranks hold what one
    process holds after updating on the whole batch (before: each rank's own, then rank 0's broadcast)."""
    from ddp_worker import prototype_batches

    from mosxav_diffproto.prototypes import ClassPrototypes

    result = run_two_ranks(tmp_path, "prototypes")
    assert result.returncode == 0, result.stderr[-3000:]
    reference = ClassPrototypes(3, 8, momentum=0.9)
    for embeddings, labels in prototype_batches():
        reference.update(embeddings, labels)
    for rank in (0, 1):
        state = torch.load(tmp_path / f"prototypes{rank}.pt", weights_only=True)
        assert torch.allclose(state["vectors"], reference.vectors, atol=1e-6), rank
        assert state["initialised"].tolist() == [True, True, True]


@pytest.mark.slow
def test_the_installed_command_runs_under_torchrun_without_python(tiny_root, tmp_path):
    """``torchrun --no-python mosxav-bench run``, as the docs say: rank 0 writes the run folder."""
    import yaml

    command = Path(sys.executable).with_name("mosxav-bench")
    if not command.is_file():
        pytest.skip("mosxav-bench is not installed beside this Python")
    config = {
        "dataset": {"root": str(tiny_root)},
        "size": 32,
        "methods": ["supervised"],
        "labeled_fractions": [0.5],
        "seeds": [0],
        "model": {"width": 4, "depth": 2},
        "train": {"iterations": 2, "batch_size": 2, "val_every": 2, "checkpoint_every": 2, "log_every": 1},
        "leaderboard": False,
        "overlays": 0,
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python"]
    result = subprocess.run(
        [*torchrun, str(command), "run", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "out")],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "per_frame.csv").is_file()
    assert "world size 2" in (tmp_path / "out" / "config.yaml").read_text()
