"""Every results table of README.md and docs/, built from the raw per-frame results under results/.

    python scripts/results_tables.py          # rewrite every table in place
    python scripts/results_tables.py --check  # exit 1 naming each table that differs (CI runs it as a test)

A table lives in a page between ``<!-- table: NAME -->`` and ``<!-- /table -->``; NAME is a key of
``TABLES``. Each study's raw results are ``results/<study>/``: ``config.yaml`` (the run config),
``provenance.csv`` (per cell: the commit that ran it, seconds, machine) and the per-frame scores
(``per_frame.csv.gz``, or ``shards/<cell>.csv.gz`` written by ``scripts/study.py``). A table whose study
is not committed says so, and how to run it.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ssl_tables  # noqa: E402  (scripts/ssl_tables.py: the semi-supervised study)

from mosxav.evaluation.coverage import (  # noqa: E402
    LARGE_SEED_COMPONENTS,
    MEASURED_COMPONENTS,
    crossed_coverage,
    family_error,
    fold_coverage,
    headline_coverage,
    units_only_fold_error,
)
from mosxav.evaluation.uncertainty import (  # noqa: E402
    minimum_detectable_effect,
    verdict,
)
from mosxav.harness.arms import arm_interval, paired_arms  # noqa: E402
from mosxav.harness.compare import format_p, structure_classes  # noqa: E402
from mosxav.harness.config import load_config  # noqa: E402
from mosxav.harness.control import controls  # noqa: E402
from mosxav.harness.report import markdown_table, with_noise_free_arms  # noqa: E402
from mosxav.harness.run import matrix, noise_reaches  # noqa: E402

RESULTS = ROOT / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VESSEL = 1
NAMES = {
    "tophat_otsu": "black top-hat + Otsu (untrained floor)",
    "supervised": "supervised (labeled frames only)",
    "fully_supervised": "fully supervised (every label: the positive control)",
    "mean_teacher": "Mean Teacher",
    "cps": "CPS",
    "diffproto": "DiffProto",
    "diffproto_noproto": "DiffProto without prototypes",
}
RUN_COMMANDS = {
    "default": "mosxav-bench run --out runs/default",
    "noise": "python scripts/study.py configs/noise.yaml --study noise",
    "diffproto-ablation": "python scripts/study.py configs/diffproto_ablation.yaml --study diffproto-ablation",
    "xca-ssl": "python scripts/study.py configs/xca_ssl.yaml --study xca-ssl",
    "diffproto-probe": "python bench/diffproto_probe.py ../runs/noise/* --out results/diffproto-probe",
}


def load(study: str) -> pd.DataFrame | None:
    """A study's per-frame rows (every shard), or None when none is committed."""
    folder = RESULTS / study
    files = sorted((folder / "shards").glob("*.csv.gz")) or sorted(folder.glob("per_frame.csv.gz"))
    if not files:
        return None
    frames = pd.concat([pd.read_csv(f, dtype={"frame": str, "sequence": str}) for f in files], ignore_index=True)
    return frames


def missing(study: str) -> str:
    return f"_No results of `{study}` are committed: `{RUN_COMMANDS[study]}`, then this command._\n"


def name(method: str) -> str:
    return NAMES.get(method, f"`{method}`")


def interval_text(frames: pd.DataFrame, classes: list[int] | None = None) -> str:
    return arm_interval(frames, "dice", classes).text()


def difference_text(result) -> str:
    return "not run" if result is None else result.interval.text(signed=True)


def per_seed_text(result) -> str:
    return "" if result is None else " / ".join(f"{v:+.3f}" for v in result.per_seed)


def p_text(result) -> str:
    return "" if result is None else format_p(result.p)


def rule_text(result) -> str:
    return "" if result is None else verdict(result)


def comparison(frames: pd.DataFrame, method: str, reference: str, structure: str | None = None):
    """``method`` against ``reference`` on one group's frames, paired by seed and unit (None when either
    has no committed cell there)."""
    if not {method, reference} <= set(frames["method"]):
        return None
    classes = structure_classes(frames, structure)
    return paired_arms(frames[frames["method"] == method], frames[frames["method"] == reference], "dice", classes)


def group(frames: pd.DataFrame, noise: float) -> pd.DataFrame:
    return frames[np.isclose(frames["label_noise"], noise)]


# -- the tables ------------------------------------------------------------------------------------


def default_table() -> str:
    frames = load("default")
    if frames is None:
        return missing("default")
    rows = []
    for method, arm in frames.groupby("method", sort=False):
        rows.append([name(method), interval_text(arm, [VESSEL]), interval_text(arm)])
    return markdown_table(["method", "vessel Dice", "mean Dice over structures"], rows)


def coverage_table() -> str:
    """The coverage tables of docs/statistics.md, from ``mosxav.evaluation.coverage``'s simulations."""
    rows = []
    for units in (6, 8, 12, 16, 32, 64):
        rows.append([units, f"{headline_coverage(units, replications=1000):.3f}"])
    table = markdown_table(["test units (one training)", "coverage of the headline interval"], rows)
    crossed = []
    for name, components in (("measured", MEASURED_COMPONENTS), ("large seed effect", LARGE_SEED_COMPONENTS)):
        for seeds in (3, 5):
            cells = []
            for units in (16, 32, 64):
                result = crossed_coverage(seeds, units, components, replications=2000, seed=seeds * 100 + units)
                cells.append(f"{result.coverage:.3f} / {result.type_i_error:.3f}")
            sds = " / ".join(f"{v:.2f}" for v in components)
            crossed.append([f"{name} ({sds})", seeds, *cells])
    headers = ["components: seed / unit / interaction SD", "seeds", "16 units", "32 units", "64 units"]
    table += "\n" + markdown_table(headers, crossed)
    folds = []
    for seeds in (1, 3):
        result = fold_coverage(5, 8, seeds=seeds, replications=2000)
        folds.append([seeds, "folds", f"{result.coverage:.3f}", f"{result.type_i_error:.3f}"])
    folds.append([1, "images (folds ignored)", "–", f"{units_only_fold_error(5, 8):.3f}"])
    headers = ["seeds", "level resampled", "coverage", "type I error"]
    table += "\n" + markdown_table(headers, folds)
    family = []
    for methods in (3, 9):
        result = family_error(methods, 5, 32, replications=400, seed=methods)
        family.append([methods, methods * (methods - 1) // 2, f"{result.unadjusted:.3f}", f"{result.holm:.3f}"])
    headers = ["methods that do not differ", "pairs tested", "some pair separates: each at 0.05", "with Holm"]
    return table + "\n" + markdown_table(headers, family)


def noise_table() -> str:
    frames = load("noise")
    if frames is None:
        return missing("noise")
    frames = with_noise_free_arms(frames)
    rates = sorted(frames["label_noise"].unique())
    rows = []
    for method in dict.fromkeys(frames["method"]):
        arm = frames[frames["method"] == method]
        cells = [interval_text(group(arm, r)) + " / " + interval_text(group(arm, r), [VESSEL]) for r in rates]
        rows.append([name(method), arm["seed"].nunique(), *cells])
    headers = ["method", "seeds", *(f"pseudo-label noise {r:g}" for r in rates)]
    return markdown_table(headers, rows)


def noise_comparisons_table() -> str:
    frames = load("noise")
    if frames is None:
        return missing("noise")
    frames = with_noise_free_arms(frames)
    rows = []
    for rate in sorted(frames["label_noise"].unique()):
        at = group(frames, rate)
        for method, reference in (
            ("mean_teacher", "supervised"),
            ("cps", "supervised"),
            ("diffproto", "supervised"),
            ("diffproto", "cps"),
            ("diffproto", "diffproto_noproto"),
        ):
            result = comparison(at, method, reference)
            rows.append(
                [
                    f"{rate:g}",
                    f"{name(method)} − {name(reference)}",
                    difference_text(result),
                    per_seed_text(result),
                    p_text(result),
                    rule_text(result),
                ]
            )
    headers = ["noise", "comparison (mean Dice over structures)", "difference [95 %]", "per seed", "p", "rule"]
    return markdown_table(headers, rows)


def missing_cells(study: str, frames: pd.DataFrame, methods: list[str], rate: float) -> tuple[int, int]:
    """(cells of ``methods`` at ``rate`` the study's config has, those of them not committed): a verdict is
    given on a complete design only, never on the cells that happened to finish first."""
    wanted = {
        (method, seed, fold)
        for method, noise, reached, seed, fold in _design(study)
        if method in methods and (np.isclose(noise, rate) or not reached)
    }
    have = {(m, int(s), None if pd.isna(f) else int(f)) for m, s, f in _cells(frames)}
    return len(wanted), len(wanted - have)


@functools.cache
def _design(study: str) -> tuple[tuple[str, float, bool, int, int | None], ...]:
    """The study's cells as (method, label noise, whether the noise reaches the method, seed, fold), read
    once per study from its committed config."""
    config = load_config(RESULTS / study / "config.yaml")
    return tuple(
        (c.method, c.label_noise, noise_reaches(config, config.method_class(c.method)), c.seed, c.fold)
        for c in matrix(config)
    )


def incomplete_text(total: int, absent: int) -> str:
    return f"incomplete: {total - absent} of {total} cells committed"


def _cells(frames: pd.DataFrame) -> set[tuple]:
    fold = frames["fold"] if "fold" in frames.columns else pd.Series([np.nan] * len(frames), index=frames.index)
    return set(zip(frames["method"], frames["seed"], fold, strict=True))


def verdict_rows(frames: pd.DataFrame, data: str, reference: str, rates: list[float], study: str) -> list[list[str]]:
    rows = []
    for rate in rates:
        at = group(frames, rate)
        total, absent = missing_cells(study, at, ["diffproto", reference], rate)
        if absent:
            rows.append([data, f"{rate:g}", incomplete_text(total, absent), "", "", "", ""])
            continue
        result = comparison(at, "diffproto", reference)
        mde = minimum_detectable_effect(result.interval)
        rows.append(
            [
                data,
                f"{rate:g}",
                difference_text(result),
                per_seed_text(result),
                format_p(result.p),
                f"{mde:.3f}",
                verdict_word(result, reference),
            ]
        )
    return rows


def verdict_word(result, reference: str) -> str:
    """The rule's answer in the words of docs/diffproto.md (no verdict under ``MIN_VERDICT_SEEDS`` seeds)."""
    said = verdict(result)
    if said == "too few seeds":
        return f"no verdict ({result.interval.seeds} seed{'s' if result.interval.seeds > 1 else ''})"
    if reference == "diffproto_noproto":
        return {"better": "helps", "worse": "hurts"}.get(said, "no detectable effect")
    return {"worse": "below supervised"}.get(said, "not below supervised")


def _verdict_table(reference: str) -> str:
    rows = []
    for study, data, rates in (
        ("noise", "synthetic default", [0.3, 0.0, 0.6]),
        ("xca-ssl", "real angiograms", [0.3, 0.0]),
        ("ssl", "synthetic MOSXAV with headroom (5 % labels)", [0.0]),
    ):
        frames = load(study)
        if frames is None:
            rows.append([data, "", missing(study).strip(), "", "", "", ""])
            continue
        rows += verdict_rows(with_noise_free_arms(frames), data, reference, rates, study)
    headers = ["data", "pseudo-label noise", "DiffProto − " + name(reference), "per seed", "p", "MDE (80 %)", "verdict"]
    return markdown_table(headers, rows)


def prototype_verdict_table() -> str:
    return _verdict_table("diffproto_noproto")


def supervised_bound_table() -> str:
    return _verdict_table("supervised")


def structure_gap_table() -> str:
    frames = load("noise")
    if frames is None:
        return missing("noise")
    frames = with_noise_free_arms(frames)
    rows = []
    for structure in frames[frames["class_id"] > 0].drop_duplicates("class_id").sort_values("class_id")["class"]:
        cells = []
        for rate in (0.0, 0.3):
            at = group(frames, rate)
            try:
                cells.append(difference_text(comparison(at, "diffproto", "supervised", structure)))
            except ValueError:
                cells.append("–")
        rows.append([structure, *cells])
    return markdown_table(["structure", "DiffProto − supervised, noise 0", "noise 0.3"], rows)


def ablation_table() -> str:
    arms, noise = load("diffproto-ablation"), load("noise")
    if arms is None or noise is None:
        return missing("diffproto-ablation" if arms is None else "noise")
    base = group(noise, 0.0)
    frames = pd.concat([base[base["method"].isin(["diffproto", "supervised"])], arms], ignore_index=True)
    rows = []
    for method in dict.fromkeys(arms["method"]):
        total, absent = missing_cells("diffproto-ablation", arms, [method], 0.0)
        if absent:
            rows.append([f"`{method}`", incomplete_text(total, absent), "", "", "", "", ""])
            continue
        macro, vessel = comparison(frames, method, "diffproto"), comparison(frames, method, "diffproto", "vessel")
        below = comparison(frames, method, "supervised")
        rows.append(
            [
                f"`{method}`",
                difference_text(macro),
                per_seed_text(macro),
                verdict(macro),
                f"{minimum_detectable_effect(macro.interval):.3f}",
                difference_text(vessel),
                difference_text(below),
            ]
        )
    headers = ["arm", "− DiffProto (mean over structures)", "per seed", "rule", "MDE (80 %)"]
    headers += ["vessel", "arm − supervised"]
    return markdown_table(headers, rows)


def rectification_table() -> str:
    path = RESULTS / "diffproto-probe" / "rectification.csv"
    if not path.is_file():
        return missing("diffproto-probe")
    table = pd.read_csv(path)
    rows = []
    for (method, fraction), part in table.groupby(["method", "t_fraction"], sort=False):
        wrong = part["wrong"].sum()
        fixed = (part["fixed"] * part["wrong"]).sum() / wrong
        copied = (part["copied"] * part["wrong"]).sum() / wrong
        broken = (part["broken"] * part["right"]).sum() / part["right"].sum()
        seeds = " / ".join(f"{f:.2f}" for f in part["fixed"])
        rows.append(
            [
                f"`{method}`",
                f"{fraction:g}",
                part["seed"].nunique(),
                f"{fixed:.3f}",
                seeds,
                f"{copied:.3f}",
                f"{broken:.4f}",
            ]
        )
    headers = ["method", "noised at (x T)", "seeds", "wrong pixels fixed", "per seed", "copied", "right pixels broken"]
    return markdown_table(headers, rows)


def heads_table() -> str:
    path = RESULTS / "diffproto-probe" / "heads_per_frame.csv.gz"
    if not path.is_file():
        return missing("diffproto-probe")
    frames = pd.read_csv(path, dtype={"frame": str, "sequence": str})
    rows = []
    for method in dict.fromkeys(m.split(":")[0] for m in frames["method"]):
        heads = [m for m in dict.fromkeys(frames["method"]) if m.startswith(method + ":")]
        reference = f"{method}:segmenter"
        for head in heads:
            arm = frames[frames["method"] == head]
            text = "–" if head == reference else difference_text(comparison(frames, head, reference))
            rows.append([f"`{method}`", head.split(":")[1], interval_text(arm), interval_text(arm, [VESSEL]), text])
    return markdown_table(["method", "head", "mean Dice", "vessel Dice", "− segmenter (mean)"], rows)


def xca_table() -> str:
    frames = load("xca-ssl")
    if frames is None:
        return missing("xca-ssl")
    frames = with_noise_free_arms(frames)
    rows = []
    for rate in sorted(frames["label_noise"].unique(), reverse=True):
        at = group(frames, rate)
        for method in dict.fromkeys(at["method"]):
            arm = at[at["method"] == method]
            versus = (
                "–"
                if method == "supervised" or "supervised" not in set(at["method"])
                else difference_text(comparison(at, method, "supervised"))
            )
            rows.append(
                [f"{rate:g}", name(method), arm["seed"].nunique(), arm["frame"].nunique(), interval_text(arm), versus]
            )
    headers = ["pseudo-label noise", "method", "seeds", "images", "vessel Dice", "− supervised"]
    return markdown_table(headers, rows)


# -- readings: the numbers a paragraph quotes, made with their tables -----------------------------------


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def _comparisons_at(study: str, reference: str, rates: list[float]) -> list[tuple[float, object]]:
    frames = load(study)
    if frames is None:
        return []
    frames = with_noise_free_arms(frames)
    out = []
    for rate in rates:
        at = group(frames, rate)
        if missing_cells(study, at, ["diffproto", reference], rate)[1]:
            continue
        out.append((rate, comparison(at, "diffproto", reference)))
    return out


def default_control() -> str:
    frames = load("default")
    if frames is None:
        return missing("default")
    found = controls(frames)
    if not found:
        return "_The committed default run has no positive control: `mosxav-bench run --out runs/default`._\n"
    return "".join(control.sentence() + "\n" for control in found)


def noise_control() -> str:
    frames = load("noise")
    if frames is None:
        return missing("noise")
    if "fully_supervised" not in set(frames["method"]):
        return (
            "_Not committed: `python scripts/study.py configs/noise.yaml --study noise --methods fully_supervised`._\n"
        )
    result = paired_arms(
        frames[frames["method"] == "fully_supervised"], frames[frames["method"] == "supervised"], "dice", [VESSEL]
    )
    seen = "detected" if result.significant and result.interval.estimate > 0 else "not detected"
    return (
        f"fully supervised − supervised (25 % labels), vessel Dice: {result.interval.text(signed=True)} "
        f"(per seed {' / '.join(_signed(v) for v in result.per_seed)}; p {format_p(result.p)}; MDE "
        f"{minimum_detectable_effect(result.interval):.3f}): the positive control is **{seen}**.\n"
    )


def verdict_reading() -> str:
    synthetic = _comparisons_at("noise", "diffproto_noproto", [0.3, 0.0, 0.6])
    real = _comparisons_at("xca-ssl", "diffproto_noproto", [0.3])
    bound = _comparisons_at("xca-ssl", "supervised", [0.3])
    if not synthetic or not real or not bound:
        return "_The verdicts' studies are not all committed._\n"
    spread = max(abs(r.interval.estimate) for _, r in synthetic)
    mdes = [minimum_detectable_effect(r.interval) for _, r in synthetic]
    words = sorted({verdict_word(r, "diffproto_noproto") for _, r in synthetic})
    (_, primary), (_, supervised) = real[0], bound[0]
    text = (
        f"On the synthetic default the prototype term's differences lie within ±{spread:.3f} mean Dice and the "
        f"design would find {min(mdes):.3f} to {max(mdes):.3f} with 80 % power; the rule says "
        f"{' / '.join(words)} across the pseudo-label noise rates. On the real angiograms at noise 0.3 (the "
        f"primary condition) the difference is {primary.interval.text(signed=True)} over the 5 folds of one "
        f"seed (MDE {minimum_detectable_effect(primary.interval):.3f}): one seed gives no verdict. DiffProto "
        f"against supervised there: {supervised.interval.text(signed=True)}."
    )
    return text + _headroom_verdicts() + "\n"


def _headroom_verdicts() -> str:
    """The semi-supervised study's two verdicts, the one design whose positive control is detected at
    its full size; "" until its DiffProto, ablation and supervised cells are all in."""
    proto = _comparisons_at("ssl", "diffproto_noproto", [0.0])
    bound = _comparisons_at("ssl", "supervised", [0.0])
    if not proto or not bound:
        return ""
    (_, prototype), (_, supervised) = proto[0], bound[0]
    control = ssl_tables.full_control(ssl_tables._frames(RESULTS), RESULTS)
    seen = "detected" if control is not None and verdict(control) == "better" else "not detected"
    return (
        f" In the semi-supervised study (5 % labels, {prototype.interval.seeds} seeds, the positive control "
        f"{seen}) the prototype term is {prototype.interval.text(signed=True)} mean Dice (MDE "
        f"{minimum_detectable_effect(prototype.interval):.3f}: {verdict_word(prototype, 'diffproto_noproto')}) "
        f"and DiffProto against supervised {supervised.interval.text(signed=True)} "
        f"({verdict_word(supervised, 'supervised')})."
    )


def xca_reading() -> str:
    frames = load("xca-ssl")
    if frames is None:
        return missing("xca-ssl")
    at = group(with_noise_free_arms(frames), 0.3)
    parts, mdes, apart = [], [], []
    for method in ("diffproto", "diffproto_noproto", "mean_teacher"):
        if method in set(at["method"]):
            result = comparison(at, method, "supervised")
            parts.append(f"{name(method)} {result.interval.text(signed=True)}")
            mdes.append(minimum_detectable_effect(result.interval))
            if result.significant:
                side = "above" if result.interval.estimate > 0 else "below"
                apart.append(f"{name(method)} is {side} supervised (p {format_p(result.p)})")
    held = (
        "Every interval holds 0"
        if not apart
        else f"{'; '.join(apart)}, the others' intervals hold 0 (one seed: no verdict under the rule)"
    )
    return (
        "Against supervised training on the same quarter of labels (vessel Dice, the 5 folds as the level "
        f"resampled): {'; '.join(parts)}. {held}. The MDEs are {min(mdes):.3f} to {max(mdes):.3f}: with one "
        "seed and 5 folds an MDE is as large as its folds' differences disagree."
        f"\n\n{xca_control(frames, mdes)}"
    )


def xca_control(frames: pd.DataFrame, mdes: list[float]) -> str:
    """The real-angiogram study's positive control, once all its folds are in, and how many comparisons
    could have seen a method that recovered half of its gap."""
    if not missing_cells("xca-ssl", frames, ["fully_supervised"], 0.0)[0]:
        return "No positive control is in the committed config (full supervision was not run here).\n"
    total, absent = missing_cells("xca-ssl", frames, ["fully_supervised", "supervised"], 0.0)
    if absent:
        return f"The positive control (every label against a quarter): {incomplete_text(total, absent)}.\n"
    (control,) = controls(frames)
    seen = "detected" if control.detected else "not detected: the comparisons above rank nothing"
    half = control.comparison.interval.estimate / 2
    blind = sum(half < mde for mde in mdes)
    if control.detected and blind:
        seen += (
            f", but a method that recovered half of it ({_signed(half)}) would stand under the MDE of {blind} of "
            f"the {len(mdes)} comparisons: the design sees what every label adds, not always a share of it"
        )
    return (
        f"The positive control, every training label against a quarter: "
        f"{control.comparison.interval.text(signed=True)} vessel Dice (p {format_p(control.comparison.p)}, "
        f"MDE {control.mde:.3f}, the 5 folds as the level): {seen}.\n"
    )


def probe_reading() -> str:
    path = RESULTS / "diffproto-probe" / "rectification.csv"
    if not path.is_file():
        return missing("diffproto-probe")
    table = pd.read_csv(path)

    def at(method: str, fraction: float, column: str) -> float:
        part = table[(table["method"] == method) & np.isclose(table["t_fraction"], fraction)]
        return float((part[column] * part["wrong"]).sum() / part["wrong"].sum())

    return (
        f"At 0.5 T the rectifier fixes {at('diffproto', 0.5, 'fixed'):.2f} of the wrong pixels and hands back "
        f"{at('diffproto', 0.5, 'copied'):.2f}; the first reading's copying denoiser hands back "
        f"{at('diffproto_copy', 0.5, 'copied'):.2f} and fixes {at('diffproto_copy', 0.5, 'fixed'):.2f}.\n"
    )


def ablation_reading() -> str:
    arms, noise = load("diffproto-ablation"), load("noise")
    if arms is None or noise is None:
        return missing("diffproto-ablation" if arms is None else "noise")
    base = group(noise, 0.0)
    frames = pd.concat([base[base["method"].isin(["diffproto", "supervised"])], arms], ignore_index=True)
    mdes, widths = [], []
    for method in dict.fromkeys(arms["method"]):
        macro, vessel = comparison(frames, method, "diffproto"), comparison(frames, method, "diffproto", "vessel")
        mdes.append(minimum_detectable_effect(macro.interval))
        widths.append((vessel.interval.high - vessel.interval.low) / 2)
    return (
        f"Two seeds: the arms' comparisons would find {min(mdes):.3f} to {max(mdes):.3f} mean Dice with 80 % "
        f"power, and the vessel intervals reach ±{max(widths):.2f}; two seeds give no verdict.\n"
    )


def joint_forward_table() -> str:
    frames = load("joint-forward")
    if frames is None:
        return "_No results of `joint-forward` are committed (run at commit 3c78baa: results/joint-forward)._\n"
    rows = []
    base = frames[frames["method"] == "supervised"]
    labels = {
        "supervised": "supervised",
        "mt0": "Mean Teacher, consistency 0, joint forward",
        "cps0split": "CPS, weight 0, separate forwards",
    }
    for method in dict.fromkeys(frames["method"]):
        arm = frames[frames["method"] == method]
        versus = "–"
        per_seed = ""
        if method != "supervised":
            result = paired_arms(arm, base, "dice", [VESSEL])
            versus = result.interval.text(signed=True)
            per_seed = " / ".join(f"{v:+.3f}" for v in result.per_seed)
        rows.append([labels.get(method, method), arm["seed"].nunique(), interval_text(arm, [VESSEL]), versus, per_seed])
    headers = ["arm (5 % labels: one labeled frame)", "seeds", "vessel Dice", "− supervised", "per seed"]
    return markdown_table(headers, rows)


def machine_spread_table() -> str:
    folder = RESULTS / "machine-spread"
    variants = sorted(folder.glob("*.csv.gz")) if folder.is_dir() else []
    if not variants:
        return "_Not committed: `python bench/machine_spread.py --out results/machine-spread`, then this command._\n"
    frames = {
        path.name.removesuffix(".csv.gz"): pd.read_csv(path, dtype={"frame": str, "sequence": str}) for path in variants
    }
    reference = frames.get("reference")
    provenance = pd.read_csv(folder / "provenance.csv").set_index("variant")
    rows = []
    for name in ("reference", "reference_again", "two_threads", "sse41"):
        if name not in frames:
            continue
        arm = frames[name]
        same = "–"
        versus = "–"
        if reference is not None and name != "reference":
            identical = np.array_equal(arm["dice"].to_numpy(), reference["dice"].to_numpy())
            same = "yes" if identical else "no"
            versus = paired_arms(arm, reference, "dice", [VESSEL]).interval.text(signed=True)
        changes = provenance.loc[name, "changes"] if isinstance(provenance.loc[name, "changes"], str) else ""
        threads = provenance.loc[name, "threads"]
        rows.append(
            [
                name,
                f"{threads} thread(s) {changes}".strip(),
                interval_text(arm, [VESSEL]),
                interval_text(arm),
                versus,
                same,
            ]
        )
    machine = provenance.iloc[0]
    headers = ["variant", "settings", "vessel Dice", "mean Dice", "− reference, vessel", "bit-identical"]
    return (
        f"One cell (`supervised`, seed 0, the default's data and schedule) on {machine['machine']} "
        f"({machine['isa']}, oneDNN {machine['onednn']}, torch {machine['torch']}):\n\n" + markdown_table(headers, rows)
    )


TABLES: dict[str, Callable[[], str]] = {
    "default": default_table,
    "coverage": coverage_table,
    "noise": noise_table,
    "noise-comparisons": noise_comparisons_table,
    "prototype-verdict": prototype_verdict_table,
    "supervised-bound": supervised_bound_table,
    "structure-gap": structure_gap_table,
    "ablation": ablation_table,
    "rectification": rectification_table,
    "heads": heads_table,
    "xca": xca_table,
    "verdict-reading": verdict_reading,
    "noise-control": noise_control,
    "default-control": default_control,
    "xca-reading": xca_reading,
    "probe-reading": probe_reading,
    "ablation-reading": ablation_reading,
    "joint-forward": joint_forward_table,
    "machine-spread": machine_spread_table,
    "ssl-summary": lambda: ssl_tables.summary(RESULTS),
    "ssl-reading": lambda: ssl_tables.reading(RESULTS),
    "ssl-gate": lambda: ssl_tables.gate_table(RESULTS),
    "ssl": lambda: ssl_tables.study_table(RESULTS),
    "ssl-comparisons": lambda: ssl_tables.comparisons_table(RESULTS),
    "ssl-arms": lambda: ssl_tables.arms_table(RESULTS),
}
BLOCK = re.compile(r"(<!-- (?P<kind>table|text): (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /(?P=kind) -->)", re.DOTALL)
#: Pages whose prose reports results: a measured number (three decimals, the form every score is printed
#: in) may stand only inside a generated block, made with its table, so none can go stale.
PROSE_CHECKED = ("docs/results.md", "docs/diffproto.md", "README.md#Results")
MEASURED_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d*\.\d{3,4}(?!\d)")


def rebuilt(text: str, cache: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        table = match["name"]
        if table not in TABLES:
            raise SystemExit(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        if table not in cache:
            cache[table] = TABLES[table]()
        return match.group(1) + cache[table] + match.group(5)

    return BLOCK.sub(replace, text)


def prose_of(name: str) -> str:
    """A checked page's text, or one section of it (``PAGE#Heading``: from that level-2 heading to the next)."""
    page, _, section = name.partition("#")
    if not (ROOT / page).is_file():
        return ""
    text = (ROOT / page).read_text(encoding="utf-8")
    if not section:
        return text
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def loose_numbers(text: str) -> list[str]:
    """Measured numbers written by hand: three-decimal numbers outside every generated block (and outside
    code), which the tables' command cannot keep in step with the results."""
    outside = BLOCK.sub("", text)
    outside = re.sub(r"```.*?```", "", outside, flags=re.DOTALL)
    outside = re.sub(r"`[^`\n]*`", "", outside)
    return MEASURED_NUMBER.findall(outside)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs")
    args = parser.parse_args()
    cache: dict[str, str] = {}
    stale = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = rebuilt(text, cache)
        if new != text:
            stale.append(page.relative_to(ROOT))
            if not args.check:
                page.write_text(new, encoding="utf-8")
    loose = {name: found for name in PROSE_CHECKED if (found := loose_numbers(prose_of(name)))}
    for name, found in loose.items():
        print(f"{name}: measured numbers outside a generated block: {', '.join(found[:6])} (make them in scripts/)")
    if args.check and stale:
        print("results tables differ from what the committed results make: " + ", ".join(map(str, stale)))
        print("run: python scripts/results_tables.py")
        return 1
    return 1 if args.check and loose else 0


if __name__ == "__main__":
    raise SystemExit(main())
