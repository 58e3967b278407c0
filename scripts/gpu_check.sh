#!/usr/bin/env bash
# One short command for a CUDA machine: trains every method of configs/paper.yaml for 150 steps at full
# resolution with AMP and torch.compile (each method in its own process: all compile at once, then they
# take turns on the GPU for the measured steps), then two DDP steps on all visible GPUs; prints frames/s
# and peak memory per method and fails on any NaN or error.
# Usage: bash scripts/gpu_check.sh [--steps N] [--methods ...] [--jobs N] [--out DIR]
# Uses the machine's own torch (installed first, as for any GPU set-up); installs this project without deps
# when it is not importable yet.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import mosxav_baselines" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps --no-build-isolation -e .
fi
exec "$PY" scripts/gpu_check.py "$@"
