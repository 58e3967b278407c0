"""Benchmark: our video J&F against vos-benchmark 0.1.0 (the engine of the official xavos-eval), same
data, one process each, in the same run; then ours on several workers.

Data: the real MOSXAV val masks and XRAVOS reference predictions in ``../shared/data/mosxav-annotations``
(or ``--annotations DIR``). vos-benchmark is installed from PyPI into its own virtual environment under
the cache (``$MOSXAV_HOME/bench/vos-benchmark``), never as a dependency of this project; its timing is
taken inside its own process, around the same per-sequence loop, so interpreter start-up and imports
count for neither side. Prints seconds (best of ``--repeat``), the ratio, the largest per-object
difference in J and F, and the official results.csv agreement.

Run: ``python bench/vos_eval.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from mosxav.data.download import cache_home
from mosxav.data.layout import read_split_file
from mosxav.evaluation.vos import evaluate_vos

PEER = "vos-benchmark==0.1.0"
PEER_SCRIPT = r"""
import json, sys, time
from vos_benchmark.benchmark import VideoEvaluator
gt, pred, names, repeat = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
best, scores = float("inf"), {}
for _ in range(repeat):
    start = time.perf_counter()
    evaluator = VideoEvaluator(gt, pred)
    results = [evaluator(name) for name in names]
    best = min(best, time.perf_counter() - start)
for name, iou, boundary in results:
    for obj in iou:
        scores[f"{name}/{int(obj)}"] = [float(iou[obj]), float(boundary[obj])]
print(json.dumps({"seconds": best, "scores": scores}))
"""


def peer_python() -> Path:
    """The interpreter of a virtual environment holding vos-benchmark (made on first use)."""
    venv = cache_home() / "bench" / "vos-benchmark"
    python = venv / "bin" / "python"
    if not python.is_file():
        print(f"installing {PEER} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER], check=True, stderr=subprocess.DEVNULL)
    return python


def run_peer(gt: Path, pred: Path, names: list[str], repeat: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(peer_python()), "-c", PEER_SCRIPT, str(gt), str(pred), ",".join(names), str(repeat)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ours(gt: Path, pred: Path, names: list[str], repeat: int, workers: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = evaluate_vos(gt, pred, sequences=names, workers=workers)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mosxav-annotations"
    parser.add_argument("--annotations", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    val = args.annotations / "val"
    if not val.is_dir():
        print(f"{val} not found: this benchmark needs the real MOSXAV annotations", file=sys.stderr)
        return 2
    gt, pred = val / "gt", val / "pred_xravos"
    names = read_split_file(val / "val_videos.txt")
    peer = run_peer(gt, pred, names, args.repeat)
    ours_seconds, result = run_ours(gt, pred, names, args.repeat, workers=1)
    frames = sum(len(list((gt / n).glob("*.png"))) for n in names)
    print(f"video J&F, MOSXAV val ({len(names)} sequences, {frames} GT frames, {len(result.objects)} objects)")
    print(f"  vos-benchmark 0.1.0 : {peer['seconds']:6.2f} s")
    print(f"  mosxav-bench        : {ours_seconds:6.2f} s   -> {peer['seconds'] / ours_seconds:4.1f}x faster")
    workers = min(len(names), os.cpu_count() or 1)
    if workers > 1:
        parallel, _ = run_ours(gt, pred, names, args.repeat, workers=workers)
        print(f"  mosxav-bench, {workers} workers: {parallel:6.2f} s   -> {peer['seconds'] / parallel:4.1f}x")
    ours = {f"{o.sequence}/{o.obj}": (o.j, o.f) for o in result.objects}
    common = sorted(set(ours) & set(peer["scores"]))
    dj = max(abs(ours[k][0] - peer["scores"][k][0]) for k in common)
    df = max(abs(ours[k][1] - peer["scores"][k][1]) for k in common)
    print(f"  per-object agreement over {len(common)} objects: max |dJ| = {dj:.2e}, max |dF| = {df:.2e} (0-100 scale)")
    if set(ours) != set(peer["scores"]):
        print(f"  objects only in one: {sorted(set(ours) ^ set(peer['scores']))}")
    g = result.global_scores()
    print(f"  global J&F {g['J&F']:.1f}, J {g['J']:.1f}, F {g['F']:.1f} (official results.csv: 81.3 / 72.1 / 90.6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
