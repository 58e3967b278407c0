"""The run's figures, fit for a paper: one palette keyed by method, intervals drawn, legends, readable
names, 200 dpi PNG with a vector PDF beside each.

- ``dice_by_structure``: Dice per structure, one panel per labeled fraction (clean labels), a bar per
  method with its 95 % interval over test units and seeds (``mosxav.harness.report.arm_interval``);
- ``dice_vs_fraction``: mean Dice over the structures against the labeled fraction, one line per method;
- ``dice_vs_noise``: the same against the label-noise rate, one panel per labeled fraction.

A method's colour comes from ``method_colours``, the same in every figure of a run and, for the
registered methods, of every run.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mosxav.data.files import atomic_path

#: Fixed colours of the shipped methods (colour-blind-safe Okabe-Ito first, then Tableau); any other
#: method (a variant, a third party's) gets one from its name, the same in every run.
FIXED_COLOURS = {
    "tophat_otsu": "#7f7f7f",
    "supervised": "#0072B2",
    "fully_supervised": "#56B4E9",
    "mean_teacher": "#E69F00",
    "ua_mt": "#F0E442",
    "cps": "#009E73",
    "fixmatch": "#CC79A7",
    "bcp": "#8c564b",
    "diffproto": "#D55E00",
    "diffproto_noproto": "#e7a97a",
}
_SPARE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#bcbd22", "#e377c2")
DPI = 200


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """Each method's colour: fixed for the shipped ones, from a hash of the name otherwise."""
    return {m: FIXED_COLOURS.get(m, _SPARE[zlib.crc32(m.encode()) % len(_SPARE)]) for m in methods}


def readable(name: str) -> str:
    """``contrast_catheter`` -> ``contrast catheter``; a method's id stays as it is (it is its name)."""
    return name.replace("_", " ")


def save(fig: Any, path: Path) -> list[Path]:
    """``path`` (PNG, ``DPI``) and the same figure as a vector PDF beside it."""
    written = []
    for target, kind in ((path, "png"), (path.with_suffix(".pdf"), "pdf")):
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=kind, dpi=DPI, bbox_inches="tight")
        written.append(target)
    return written


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _error(rows: pd.DataFrame) -> np.ndarray:
    """(2, n) distances from the estimates to their interval ends (0 where there is no interval)."""
    low = (rows["estimate"] - rows["low"]).fillna(0).clip(lower=0)
    high = (rows["high"] - rows["estimate"]).fillna(0).clip(lower=0)
    return np.vstack([low.to_numpy(), high.to_numpy()])


def dice_by_structure(intervals: pd.DataFrame, methods: Sequence[str], path: Path) -> list[Path]:
    """``intervals``: rows of (method, labeled_fraction, label_noise, structure, estimate, low, high)."""
    plt = _pyplot()
    clean = intervals[intervals["label_noise"] == intervals["label_noise"].min()]
    floor = clean[clean["labeled_fraction"] == 0]  # untrained pipelines: the same in every panel
    fractions = sorted(f for f in clean["labeled_fraction"].unique() if f > 0) or [0.0]
    structures = list(dict.fromkeys(clean["structure"]))
    colours = method_colours(methods)
    fig, axes = plt.subplots(
        1, len(fractions), figsize=(3.2 + 2.2 * len(structures) * len(fractions), 3.6), squeeze=False
    )
    for ax, fraction in zip(axes[0], fractions, strict=True):
        panel = pd.concat([floor, clean[clean["labeled_fraction"] == fraction]]) if fraction else floor
        shown = [m for m in methods if m in set(panel["method"])]
        width = 0.8 / max(1, len(shown))
        for k, method in enumerate(shown):
            rows = panel[panel["method"] == method].set_index("structure").reindex(structures)
            x = np.arange(len(structures)) + (k - (len(shown) - 1) / 2) * width
            ax.bar(
                x,
                rows["estimate"].fillna(0),
                width,
                yerr=_error(rows.reset_index()),
                capsize=2,
                color=colours[method],
                label=method,
                error_kw={"elinewidth": 0.8},
            )
        ax.set_xticks(np.arange(len(structures)), [readable(s) for s in structures], rotation=20, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(f"{fraction:g} of the labels" if fraction else "untrained pipelines")
        ax.set_ylabel("test Dice (95 % interval)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=min(len(labels), 5),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 1.08),
    )
    written = save(fig, path)
    plt.close(fig)
    return written


def dice_curve(
    intervals: pd.DataFrame, methods: Sequence[str], x: str, xlabel: str, path: Path, panels: str | None = None
) -> list[Path]:
    """Mean Dice over the structures against ``x``, a line per method with its interval band; one panel
    per value of ``panels`` (e.g. the labeled fraction) when given."""
    plt = _pyplot()
    colours = method_colours(methods)
    keys = sorted(intervals[panels].unique()) if panels else [None]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        part = intervals if key is None else intervals[intervals[panels] == key]
        for method in [m for m in methods if m in set(part["method"])]:
            rows = part[part["method"] == method].sort_values(x)
            ax.plot(rows[x], rows["estimate"], marker="o", color=colours[method], label=method)
            if rows["low"].notna().any():
                ax.fill_between(rows[x], rows["low"], rows["high"], color=colours[method], alpha=0.15, linewidth=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("mean Dice over structures (test)")
        if key is not None:
            ax.set_title(f"{key:g} of the labels")
        ax.legend(fontsize=7, frameon=False)
    written = save(fig, path)
    plt.close(fig)
    return written
