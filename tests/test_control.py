"""The positive control of a run: fully supervised beside the supervised bound, detected or not, and a
report that ranks nothing where its control was not seen."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mosxav.harness.control import controls
from mosxav.harness.report import write_report


def _frames(scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """per_frame rows: method -> (seeds, units) vessel Dice, one frame per unit; fully_supervised at 1.0."""
    rows = []
    for method, table in scores.items():
        fraction = 1.0 if method == "fully_supervised" else 0.05
        for seed, values in enumerate(np.atleast_2d(table)):
            for unit, value in enumerate(values):
                rows.append(
                    {
                        "method": method,
                        "labeled_fraction": fraction,
                        "label_noise": 0.0,
                        "seed": seed,
                        "sequence": f"v{unit:02d}",
                        "frame": "00000",
                        "class_id": 1,
                        "class": "vessel",
                        "dice": value,
                        "iou": value,
                        "hd": 1.0,
                        "hd95": 1.0,
                        "assd": 1.0,
                        "nsd": value,
                        "evaluated": True,
                        "gt_present": True,
                        "pred_present": True,
                        "capped": False,
                    }
                )
    return pd.DataFrame(rows)


def _scores(gap: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 0.7, size=(3, 16))
    return {
        "supervised": base,
        "fully_supervised": base + gap + rng.normal(0, 0.01, base.shape),
        "mean_teacher": base + 0.08 + rng.normal(0, 0.005, base.shape),
        "cps": base + rng.normal(0, 0.005, base.shape),
    }


def test_a_detected_control_lets_the_report_rank(tmp_path):
    frames = _frames(_scores(gap=0.2))
    (control,) = controls(frames)
    assert control.detected and control.labeled_fraction == 0.05
    assert control.comparison.interval.estimate > 0.15
    write_report(frames, tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert "Positive control detected" in text
    assert "| 1 | mean_teacher |" in text  # ranked: Mean Teacher significantly above the others


def test_an_undetected_control_ranks_nothing_and_says_why(tmp_path):
    frames = _frames(_scores(gap=0.0))
    (control,) = controls(frames)
    assert not control.detected
    write_report(frames, tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert "Positive control NOT detected" in text and "ranks nothing" in text
    assert "| – | mean_teacher |" in text and "No rank: the positive control" in text


def test_a_run_without_the_control_says_so(tmp_path):
    scores = _scores(gap=0.2)
    del scores["fully_supervised"]
    frames = _frames(scores)
    assert controls(frames) == []
    write_report(frames, tmp_path)
    assert "None in this run: list `fully_supervised`" in (tmp_path / "results.md").read_text()
