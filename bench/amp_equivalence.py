"""Is bf16 autocast equivalent to fp32 for a study? An equivalence test, with its margin fixed here,
before any run it judges.

A study may train in bf16 (``train.amp: true``) only once this test, run on the study's own schedule
and on a machine with native bf16 (a CPU with AVX-512 BF16 or AMX, or a GPU), shows the two equivalent:
every cell of ``--config`` for ``--method`` is trained twice per seed, once in fp32 and once in bf16
(training, validation and prediction under autocast), and the paired difference of the vessel Dice,
bf16 - fp32 over seeds x test sequences (``mosxav.harness.arms``), is judged by two one-sided tests
(TOST) at 5 %: equivalent when the 90 % interval lies inside ±``MARGIN``. At least 5 seeds.

    python bench/amp_equivalence.py --config configs/ssl.yaml --method supervised --seeds 0 1 2 3 4 --out runs/amp

On a machine without native bf16 it refuses to run: autocast would emulate bf16 there, slower, and the
studies stay in fp32 (``mosxav.training.trainer.native_bf16``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mosxav.harness.arms import paired_arms  # noqa: E402
from mosxav.training.trainer import native_bf16  # noqa: E402

#: The equivalence margin on the vessel Dice, fixed before any run: half the smallest effect the
#: semi-supervised study is powered for (its MDE goal of 0.03), so bf16 cannot hide or make an effect.
MARGIN = 0.015
MIN_SEEDS = 5


def train(config: Path, method: str, seeds: list[int], amp: bool, out: Path) -> pd.DataFrame:
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings |= {"methods": [method], "seeds": seeds, "overlays": 0, "leaderboard": False}
    settings["train"] = {**settings.get("train", {}), "amp": amp}
    spec = out / f"{'bf16' if amp else 'fp32'}.yaml"
    spec.write_text(yaml.safe_dump(settings), encoding="utf-8")
    run = out / spec.stem
    command = [sys.executable, "-m", "mosxav_leaderboard.command_line", "run", "--config", str(spec), "--out", str(run)]
    subprocess.run(command, check=True, cwd=ROOT)
    return pd.read_csv(run / "per_frame.csv", dtype={"frame": str, "sequence": str})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--method", default="supervised")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(MIN_SEEDS)))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if len(args.seeds) < MIN_SEEDS:
        parser.error(f"an equivalence test needs at least {MIN_SEEDS} seeds")
    if not native_bf16(args.device):
        print(f"{args.device} has no native bf16: the studies train in fp32 here; run this where it has")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    fp32 = train(args.config, args.method, args.seeds, False, args.out)
    bf16 = train(args.config, args.method, args.seeds, True, args.out)
    result = paired_arms(bf16, fp32, "dice", [1])
    interval = result.interval
    half = stats.t.ppf(0.95, interval.df) * interval.se  # the 90 % interval of TOST at 5 %
    low, high = interval.estimate - half, interval.estimate + half
    equivalent = -MARGIN < low and high < MARGIN
    print(
        f"bf16 - fp32, vessel Dice: {interval.estimate:+.4f}, 90 % interval [{low:+.4f}, {high:+.4f}] over "
        f"{interval.seeds} seeds x {interval.units} sequences; margin ±{MARGIN}: "
        + ("equivalent" if equivalent else "not shown equivalent")
    )
    return 0 if equivalent else 1


if __name__ == "__main__":
    raise SystemExit(main())
