#!/usr/bin/env bash
# Set up MOSXAV-Bench in ./.venv. Usage: bash scripts/install.sh [--test]
# Installs PyTorch first where none is importable (the CPU wheel 2.13.0 where one lies on disk),
# so that resolving the project never pulls a multi-GB CUDA build by accident.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" 2>/dev/null; then
  "$VPY" -m pip install -q "torch==2.13.0"
fi
if [ "${1:-}" = "--test" ]; then
  "$VPY" -m pip install -q -e ".[test]"
else
  "$VPY" -m pip install -q -e .
fi
