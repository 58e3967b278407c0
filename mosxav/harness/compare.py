"""Methods of one run compared pair by pair: the same test units, the difference and its p-value.

Two methods of a run were trained on the same partitions and seeds and tested on the same frames, so
the honest comparison is paired: per test unit (a sequence of MOSXAV, as the leaderboard pairs them;
an image of a pairs folder, whose images are one "sequence"), the macro Dice over the structures
evaluated there, averaged over the run's seeds; then the mean difference to a reference method, a
95 % bootstrap interval over units and the leaderboard's sign-flip permutation test
(``mosxav.evaluation.uncertainty.paired_permutation_p``). Written as ``paired_vs_<reference>.md``/``.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mosxav.data.files import write_text
from mosxav.evaluation.uncertainty import bootstrap_mean_ci, paired_permutation_p
from mosxav.harness.report import ARM_COLUMNS, markdown_table


def unit_scores(frames: pd.DataFrame, metric: str = "dice", structure: str | None = None) -> pd.DataFrame:
    """One value per (method, labeled fraction, label noise, unit): the macro ``metric`` over the
    structures evaluated in that unit (or ``structure`` alone), averaged over seeds."""
    rows = frames[frames["evaluated"].astype(bool)]
    if structure is not None:
        rows = rows[rows["class"] == structure]
        if rows.empty:
            raise ValueError(
                f"no evaluated rows of structure {structure!r}; present: {sorted(frames['class'].unique())}"
            )
    by_frame = rows["sequence"].nunique() == 1
    rows = rows.assign(unit=rows["sequence"].astype(str) + ("/" + rows["frame"].astype(str) if by_frame else ""))
    cell = [*ARM_COLUMNS, "seed", "unit"]
    per_class = rows.groupby(cell + ["class"])[metric].mean()
    per_unit = per_class.groupby(level=cell).mean()
    return per_unit.groupby(level=[*ARM_COLUMNS, "unit"]).mean().reset_index()


def format_p(p: float) -> str:
    """A permutation p-value for a table: 0 means none of the 20,000 sign flips reached the difference."""
    return f"{p:.3g}" if p > 0 else "< 5e-05"


def paired_difference(values: np.ndarray, reference: np.ndarray) -> dict[str, float | int]:
    """``values - reference`` over paired units (NaN pairs dropped): both means over those units, the
    mean difference, its 95 % bootstrap interval, the sign-flip permutation p and the units above/below
    the reference."""
    values, reference = np.asarray(values, float), np.asarray(reference, float)
    both = ~(np.isnan(values) | np.isnan(reference))
    diff = values[both] - reference[both]
    low, high = bootstrap_mean_ci(diff) if diff.size else (np.nan, np.nan)
    return {
        "units": int(diff.size),
        "reference_mean": float(reference[both].mean()) if diff.size else np.nan,
        "method_mean": float(values[both].mean()) if diff.size else np.nan,
        "difference": float(diff.mean()) if diff.size else np.nan,
        "ci_low": low,
        "ci_high": high,
        "p": paired_permutation_p(values[both], reference[both]),
        "better": int((diff > 0).sum()),
        "worse": int((diff < 0).sum()),
    }


def compare(frames: pd.DataFrame, reference: str, metric: str = "dice", structure: str | None = None) -> pd.DataFrame:
    """Every other method against ``reference`` within each (labeled fraction, label noise) group."""
    scores = unit_scores(frames, metric, structure)
    if reference not in set(scores["method"]):
        raise ValueError(
            f"reference method {reference!r} is not in the run; methods: {sorted(scores['method'].unique())}"
        )
    order = list(dict.fromkeys(frames["method"]))
    results = []
    for (fraction, noise), group in scores.groupby(["labeled_fraction", "label_noise"], sort=True):
        table = group.pivot(index="unit", columns="method", values=metric)
        if reference not in table.columns:
            continue
        for method in [m for m in order if m in table.columns and m != reference]:
            stats = paired_difference(table[method].to_numpy(), table[reference].to_numpy())
            results.append(
                {"method": method, "reference": reference, "labeled_fraction": fraction, "label_noise": noise, **stats}
            )
    return pd.DataFrame(results)


def read_frames(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "per_frame.csv", dtype={"frame": str, "sequence": str})


def arm_frames(spec: str, default_method: str) -> pd.DataFrame:
    """``NAME=RUN[:METHOD]``: METHOD's rows of another run folder (default: the reference method), renamed
    NAME, so that runs with other settings (another config, not a variant) pair with the reference."""
    name, sep, where = spec.partition("=")
    if not sep or not name or not where:
        raise ValueError(f"an arm is NAME=RUN[:METHOD], got {spec!r}")
    folder, _, method = where.partition(":")
    frames = read_frames(Path(folder))
    method = method or default_method
    rows = frames[frames["method"] == method]
    if rows.empty:
        raise ValueError(f"{folder}: no rows of method {method!r}; methods: {sorted(frames['method'].unique())}")
    return rows.assign(method=name)


def write_comparison(
    run_dir: Path, reference: str, metric: str = "dice", structure: str | None = None, arms: list[str] | None = None
) -> Path:
    """``paired_vs_<reference>[_<structure>].md`` and ``.csv`` in the run folder, with ``arms`` from
    other run folders (``arm_frames``) beside its own methods; returns the Markdown path."""
    frames = pd.concat([read_frames(run_dir), *(arm_frames(arm, reference) for arm in arms or [])], ignore_index=True)
    table = compare(frames, reference, metric, structure)
    stem = f"paired_vs_{reference}" + (f"_{structure}" if structure else "")
    write_text(run_dir / f"{stem}.csv", table.to_csv(index=False, float_format="%.6f"))
    what = f"{metric} of {structure}" if structure else f"macro {metric} over the structures"
    unit = "image" if frames["sequence"].nunique() == 1 else "test sequence"
    lines = [
        f"# Paired comparison against {reference}",
        "",
        f"Per {unit}: {what}, averaged over seeds; difference = method - {reference} (mean over {unit}s, 95 % "
        "bootstrap interval), p: two-sided sign-flip permutation test; better/worse: units where the method "
        "is above/below the reference.",
        "",
    ]
    rows = [
        [
            r.method,
            f"{r.labeled_fraction:g}",
            f"{r.label_noise:g}",
            r.units,
            f"{r.method_mean:.3f}",
            f"{r.reference_mean:.3f}",
            f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
            format_p(r.p),
            f"{r.better}/{r.worse}",
        ]
        for r in table.itertuples()
    ]
    headers = ["method", "labeled", "label noise", "units", metric, reference, "difference", "p", "better/worse"]
    lines.append(markdown_table(headers, rows))
    path = run_dir / f"{stem}.md"
    write_text(path, "\n".join(lines))
    return path
