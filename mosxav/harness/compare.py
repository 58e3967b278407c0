"""Methods of one run compared pair by pair: the same test units and seeds, the difference, its interval
and its test.

Two methods of a run were trained on the same partitions and seeds and tested on the same frames, so
the honest comparison is paired twice: seed s of a method with seed s of the reference, and unit u
with unit u (a sequence of MOSXAV, as the leaderboard pairs them; an image of a pairs folder, whose
images are one "sequence"). The difference is that of the two arms' headlines (the frame-weighted macro
mean the report prints), analysed through each (seed, unit)'s contribution to it
(``mosxav.harness.arms.paired_arms``): the mean difference, each seed's own difference, the interval over
seeds and units (folds, in a cross-validated run; with one seed and no folds: over units only, and the
table says so), and the test (one seed: the exact sign-flip over units; otherwise the t test with the
interval's standard error). Written as ``paired_vs_<reference>.md``/``.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mosxav.data.files import write_text
from mosxav.errors import DataError
from mosxav.evaluation.uncertainty import MIN_UNITS, PairedComparison, holm, paired_comparison
from mosxav.harness.arms import paired_arms
from mosxav.harness.report import markdown_table, with_noise_free_arms


def format_p(p: float) -> str:
    """A p-value for a table: the sign-flip test's exact values, ``< 1e-4`` below that, – where undefined."""
    if np.isnan(p):
        return "–"
    return f"{p:.3g}" if p >= 1e-4 else "< 1e-4"


def paired_difference(values: np.ndarray, reference: np.ndarray) -> dict[str, float | int]:
    """``values - reference`` over paired units of one seed (NaN pairs dropped), as a table row."""
    return comparison_row(paired_comparison(np.asarray(values, float), np.asarray(reference, float)))


def comparison_row(result: PairedComparison) -> dict[str, float | int | str]:
    """The columns of ``paired_vs_<reference>.csv`` for one comparison."""
    interval = result.interval
    return {
        "seeds": interval.seeds,
        "units": interval.units,
        "reference_mean": result.reference_mean,
        "method_mean": result.method_mean,
        "difference": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "p": result.p,
        "test": result.test,
        "per_seed": " ".join(f"{v:+.4f}" for v in result.per_seed),
        "significant": result.significant,
        "better": result.better,
        "worse": result.worse,
    }


def structure_classes(frames: pd.DataFrame, structure: str | None) -> list[int] | None:
    """The class id of ``structure`` (None: the macro mean over every structure).

    Raises:
        ValueError: no evaluated row of that structure.
    """
    if structure is None:
        return None
    rows = frames[(frames["class"] == structure) & frames["evaluated"].astype(bool)]
    if rows.empty:
        raise ValueError(f"no evaluated rows of structure {structure!r}; present: {sorted(frames['class'].unique())}")
    return sorted(int(c) for c in rows["class_id"].unique())


def compare(frames: pd.DataFrame, reference: str, metric: str = "dice", structure: str | None = None) -> pd.DataFrame:
    """Every other method against ``reference`` within each (labeled fraction, label noise) group,
    paired by seed and unit (seeds one of the two lacks are left out); ``p_holm`` is each p adjusted over
    every comparison of the table (Holm), the one to read when the table answers which methods beat the
    reference."""
    frames = with_noise_free_arms(frames)
    classes = structure_classes(frames, structure)
    if reference not in set(frames["method"]):
        raise ValueError(
            f"reference method {reference!r} is not in the run; methods: {sorted(frames['method'].unique())}"
        )
    order = list(dict.fromkeys(frames["method"]))
    results = []
    for (fraction, noise), group in frames.groupby(["labeled_fraction", "label_noise"], sort=True):
        if reference not in set(group["method"]):
            continue
        base = group[group["method"] == reference]
        for method in [m for m in order if m in set(group["method"]) and m != reference]:
            try:
                result = paired_arms(group[group["method"] == method], base, metric, classes)
            except ValueError:  # no seed or unit in common
                continue
            row = {"method": method, "reference": reference, "labeled_fraction": fraction, "label_noise": noise}
            results.append(row | comparison_row(result))
    table = pd.DataFrame(results)
    if not table.empty:  # the table's comparisons are one family: which methods beat the reference
        table.insert(table.columns.get_loc("p") + 1, "p_holm", holm(table["p"].tolist()))
    return table


def read_frames(run_dir: Path) -> pd.DataFrame:
    """A run folder's per-frame scores (one line naming the folder when it is no finished run)."""
    path = run_dir / "per_frame.csv"
    if not path.is_file():
        problem = "no such folder" if not run_dir.exists() else "no per_frame.csv: not a finished run folder"
        raise DataError(run_dir, problem + " (a run writes it once every cell is scored; merge a sharded run first)")
    return pd.read_csv(path, dtype={"frame": str, "sequence": str})


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
    lines = [f"# Paired comparison against {reference}", "", *comparison_legend(what, unit, reference), ""]
    lines.append(comparison_markdown(table, metric, reference))
    path = run_dir / f"{stem}.md"
    write_text(path, "\n".join(lines))
    return path


def comparison_legend(what: str, unit: str, reference: str) -> list[str]:
    """The words under a comparison table: what a cell is and what its interval covers."""
    return [
        f"{what.capitalize()}: the frame-weighted headline of each arm, as the run's results.md prints it; "
        f"difference = method - {reference}, paired by seed and {unit} (each (seed, {unit}) enters through "
        "its contribution to the headline: `mosxav.harness.arms`). One seed: the interval covers "
        f"{unit} variation only (one training each, so it says nothing of another training), p from the "
        f"exact sign-flip test over {unit}s. Several seeds: seeds and {unit}s are crossed random levels, "
        "each variance component counted once, p from the t test with the interval's standard error; per "
        "seed: each seed's own difference. Cross-validated: the folds (one training each per seed) take the "
        f"{unit}s' place. Significant: p < 0.05 and the interval excludes 0, each comparison read alone; "
        "p (Holm): p adjusted over every comparison of the table, the one to read when the table as a whole "
        f"answers which methods beat the reference. Under {MIN_UNITS} {unit}s "
        f"there is no interval and no test. better/worse: {unit}s whose contribution is above/below the "
        "reference's (seeds averaged).",
    ]


def comparison_markdown(table: pd.DataFrame, metric: str, reference: str) -> str:
    """A comparison table (``compare``'s rows) as Markdown."""
    rows = []
    for r in table.itertuples():
        interval = f"{r.difference:+.3f}"
        if not np.isnan(r.ci_low):
            interval += f" [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        rows.append(
            [
                r.method,
                f"{r.labeled_fraction:g}",
                f"{r.label_noise:g}",
                r.seeds,
                r.units,
                f"{r.method_mean:.3f}",
                f"{r.reference_mean:.3f}",
                interval,
                r.per_seed if r.seeds > 1 else "",
                format_p(r.p),
                format_p(r.p_holm),
                "yes" if r.significant else "no",
                f"{r.better}/{r.worse}",
            ]
        )
    headers = [
        "method",
        "labeled",
        "label noise",
        "seeds",
        "units",
        metric,
        reference,
        "difference",
        "per seed",
        "p",
        "p (Holm)",
        "significant",
        "better/worse",
    ]
    return markdown_table(headers, rows)
