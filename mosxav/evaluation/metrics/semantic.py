"""Per-structure evaluation of semantic label maps: per frame, per sequence and overall.

Aggregation (the leaderboard convention, see ``mosxav.evaluation.metrics``): for each class, average over the
frames where the class is present in the ground truth *or* the prediction; frames where both are
empty are counted as true negatives and excluded, so rare classes are not inflated by automatic
1.0s while false positives on absent classes still cost. The headline is the macro mean over the
foreground classes that were evaluated at least once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from mosxav.constants import CLASS_NAMES, FOREGROUND_CLASSES
from mosxav.evaluation.metrics.pairwise import METRIC_NAMES, window_metrics
from mosxav.evaluation.metrics.surface import Spacing, bounding_box, span


def evaluate_frame(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    classes: Sequence[int] = FOREGROUND_CLASSES,
    spacing: Spacing = (1.0, 1.0),
    tolerance: float = 2.0,
) -> list[dict]:
    """One row per class with every metric for one frame (label maps of equal shape).

    One pass over the frame finds every class's window (``class_windows``); each class then costs two
    compares of its window, and the classes present in both maps are measured together, as bands of one
    map (``window_metrics``): numpy's cost per call made a small class cost nearly what the vessel
    did when each class had its own passes.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"label maps differ in shape: ground truth {gt.shape}, prediction {pred.shape}")
    windows = class_windows(gt, pred, classes)
    pairs = [(gt[windows[cls]] == cls, pred[windows[cls]] == cls) for cls in classes]
    scores = window_metrics(pairs, gt.shape, spacing=spacing, tolerance=tolerance)
    return [
        {"class_id": cls, "class": CLASS_NAMES[cls] if cls < len(CLASS_NAMES) else str(cls), **score.as_dict()}
        for cls, score in zip(classes, scores, strict=True)
    ]


Window = tuple[slice, slice]
#: The window of a class that is in neither map: no pixel.
EMPTY_WINDOW: Window = (slice(0, 0), slice(0, 0))


def class_windows(gt: np.ndarray, pred: np.ndarray, classes: Sequence[int]) -> dict[int, Window]:
    """The bounding box of each class in either label map (``EMPTY_WINDOW`` when in neither).

    Ids below 8 are bits of one byte per pixel: one OR of the two maps' bits, then ORs along the rows
    and the columns, serve every class, where each class had its own compares and bounding box over
    the whole frame (``bench/metrics.py``: about 5 % of the scoring time). Other ids take a bounding box per
    class, each from its own compares.
    """
    if gt.ndim != 2:
        raise ValueError(f"label maps must be 2-D, got shape {gt.shape}")
    if not classes or max(classes) >= 8 or min(classes) < 0:
        boxes = {cls: bounding_box((gt == cls) | (pred == cls)) for cls in classes}
        return {cls: EMPTY_WINDOW if box is None else box for cls, box in boxes.items()}
    one = np.uint8(1)
    bits = np.left_shift(one, gt, dtype=np.uint8)  # ids of 8 and more shift out: no bit
    bits |= np.left_shift(one, pred, dtype=np.uint8)
    in_rows = _or_along_rows(bits)
    in_cols = np.bitwise_or.reduce(bits, axis=0)
    windows = {}
    for cls in classes:
        rows = span(in_rows & (1 << cls))
        windows[cls] = EMPTY_WINDOW if rows is None else (rows, span(in_cols & (1 << cls)))
    return windows


def _or_along_rows(bits: np.ndarray) -> np.ndarray:
    """The OR of each row of a uint8 map, eight pixels a word when the rows allow it."""
    if bits.shape[1] % 8 == 0 and bits.flags.c_contiguous:
        words = np.bitwise_or.reduce(bits.view(np.uint64), axis=1)
        return np.bitwise_or.reduce(words.view(np.uint8).reshape(-1, 8), axis=1)
    return np.bitwise_or.reduce(bits, axis=1)


def frame_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows from ``evaluate_frame`` (plus sequence/frame keys) as a DataFrame with an ``evaluated`` flag."""
    table = pd.DataFrame(list(rows))
    table["evaluated"] = table["gt_present"] | table["pred_present"]
    return table


def summarize(table: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Per-class means over evaluated frames, with counts, capped cases and HD medians.

    ``by`` adds grouping keys (e.g. ``["sequence"]`` for per-sequence scores). A ``mean`` row per
    group gives the macro mean over the classes that were evaluated.
    """
    keys = [*by, "class_id", "class"]
    evaluated = table[table["evaluated"]]
    stats = evaluated.groupby(keys, sort=True)[list(METRIC_NAMES)].mean()
    stats["n_evaluated"] = evaluated.groupby(keys).size()
    stats["n_capped"] = evaluated.groupby(keys)["capped"].sum().astype(int)
    stats["hd_median"] = evaluated.groupby(keys)["hd"].median()
    stats["hd95_median"] = evaluated.groupby(keys)["hd95"].median()
    counts = table.groupby(keys).agg(
        n_frames=("evaluated", "size"), n_true_negative=("evaluated", lambda e: int((~e).sum()))
    )
    summary = counts.join(stats, how="left").reset_index()
    summary["n_evaluated"] = summary["n_evaluated"].fillna(0).astype(int)
    summary["n_capped"] = summary["n_capped"].fillna(0).astype(int)
    macro_cols = list(METRIC_NAMES) + ["hd_median", "hd95_median"]
    groups = summary.groupby(list(by)) if by else [((), summary)]
    macro_rows = []
    for key, group in groups:
        valid = group[group["n_evaluated"] > 0]
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=False))
        row.update(
            {
                "class_id": -1,
                "class": "mean",
                "n_frames": int(group["n_frames"].max()),
                "n_true_negative": int(group["n_true_negative"].sum()),
                "n_evaluated": int(valid["n_evaluated"].sum()),
                "n_capped": int(valid["n_capped"].sum()),
            }
        )
        row.update({c: float(valid[c].mean()) if len(valid) else float("nan") for c in macro_cols})
        macro_rows.append(row)
    return pd.concat([summary, pd.DataFrame(macro_rows)], ignore_index=True)
