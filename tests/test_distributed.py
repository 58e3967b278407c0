"""Two CPU processes under torchrun (gloo) train with DDP and end with the same weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.parametrize("method_name", ["supervised", "mean_teacher"])
def test_two_gloo_ranks_agree_on_the_final_weights(tmp_path, method_name):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent.parent)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(tmp_path),
        method_name,
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
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
