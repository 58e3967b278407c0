#!/usr/bin/env bash
# Set up MOSXAV-Bench in ./.venv. Usage: bash scripts/install.sh [--test] [--serve] [--bench]
# --test: everything the tests need; --serve: the leaderboard service (mosxav-bench serve); --bench: the
# bench/ scripts' peers. The flags combine (--serve --test installs both extras).
# Installs PyTorch first where none is importable (the CPU wheel 2.13.0 where one lies on disk),
# so that resolving the project never pulls a multi-GB CUDA build by accident.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=()
for flag in "$@"; do
  case "$flag" in
    --test) extras+=(test) ;;
    --serve) extras+=(serve) ;;
    --bench) extras+=(bench) ;;
    *) echo "usage: bash scripts/install.sh [--test] [--serve] [--bench]" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" 2>/dev/null; then
  "$VPY" -m pip install -q "torch==2.13.0"
fi
if [ ${#extras[@]} -eq 0 ]; then
  "$VPY" -m pip install -q -e .
else
  "$VPY" -m pip install -q -e ".[$(IFS=,; echo "${extras[*]}")]"
fi
