#!/usr/bin/env bash
# Set up MOSXAV-Bench in ./.venv. Usage: bash scripts/install.sh [--test | --serve]
# --test: everything the tests need; --serve: the leaderboard service (mosxav-bench serve).
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
case "${1:-}" in
  --test) "$VPY" -m pip install -q -e ".[test]" ;;
  --serve) "$VPY" -m pip install -q -e ".[serve]" ;;
  "") "$VPY" -m pip install -q -e . ;;
  *) echo "usage: bash scripts/install.sh [--test | --serve]" >&2; exit 2 ;;
esac
