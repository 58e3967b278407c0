"""The semi-supervised study's tables and reading (configs/ssl.yaml, results/ssl/): its gate, every
method against the supervised bound on the primary endpoint, ranks where the test separates, the
prototype verdict, the joint-forward arm, and how much each method's unlabeled terms act.

Imported by ``scripts/results_tables.py``, which owns the registry of tables and the pages they live in.
Every number of the study's prose is made here too (``ssl_reading``), so none can go stale.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from mosxav.evaluation.uncertainty import (
    ALPHA,
    Components,
    expected_mde,
    holm,
    minimum_detectable_effect,
    seeds_for_mde,
    variance_components,
    verdict,
)
from mosxav.harness.arms import arm_interval, arm_table, paired_arms, paired_components
from mosxav.harness.compare import format_p
from mosxav.harness.config import load_config
from mosxav.harness.control import PRIMARY_CLASS
from mosxav.harness.report import markdown_table, significance_ranks
from mosxav.harness.run import matrix

STUDY = "ssl"
#: The gate's seeds: the positive control is read on these before the rest of the study runs.
GATE_SEEDS = (0, 1, 2)
#: The gate passes when the control's gap is at least this many times the design's expected MDE.
GATE_RATIO = 2.0
REFERENCE = "supervised"
CONTROL = "fully_supervised"
COMMAND = "python scripts/study.py configs/ssl.yaml --study ssl --jobs 2"
NAMES = {
    "supervised": "supervised (labeled frames only)",
    "fully_supervised": "fully supervised (every label: the control)",
    "mean_teacher": "Mean Teacher",
    "mean_teacher_joint": "Mean Teacher, joint forward (the reference's)",
    "ua_mt": "UA-MT",
    "cps": "CPS",
    "fixmatch": "FixMatch",
    "bcp": "BCP",
    "diffproto": "DiffProto",
    "diffproto_noproto": "DiffProto without prototypes",
}
VESSEL = [PRIMARY_CLASS]
#: The study's power goal: the median MDE (80 %) of the comparisons with supervised, vessel Dice.
MDE_GOAL = 0.03


def _name(method: str) -> str:
    return NAMES.get(method, f"`{method}`")


def _folder(results: Path) -> Path:
    return results / STUDY


@functools.cache
def _frames(results: Path) -> pd.DataFrame | None:
    files = sorted((_folder(results) / "shards").glob("*.csv.gz"))
    if not files:
        return None
    return pd.concat([pd.read_csv(f, dtype={"frame": str, "sequence": str}) for f in files], ignore_index=True)


def _training(results: Path) -> pd.DataFrame:
    path = _folder(results) / "training.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["cell"])


@functools.cache
def _design(results: Path) -> tuple[tuple[str, int], ...]:
    """The study's (method, seed) cells, from its committed config."""
    config = load_config(_folder(results) / "config.yaml")
    return tuple((c.method, c.seed) for c in matrix(config))


def _schedule(results: Path) -> tuple[int, int]:
    """(steps the unlabeled terms ramp over, training steps) of the study's committed config."""
    train = load_config(_folder(results) / "config.yaml").train
    return train.rampup_steps or train.iterations, train.iterations


def _missing(results: Path) -> str:
    return f"_No cell of the study is committed: `{COMMAND}`, then `python scripts/results_tables.py`._\n"


def _arm(frames: pd.DataFrame, method: str, seeds: tuple[int, ...] | None = None) -> pd.DataFrame:
    rows = frames[frames["method"] == method]
    return rows if seeds is None else rows[rows["seed"].isin(seeds)]


def _complete(frames: pd.DataFrame, results: Path, methods: list[str]) -> tuple[int, int]:
    """(cells of ``methods`` in the design, how many of them are committed)."""
    wanted = {(m, s) for m, s in _design(results) if m in methods}
    have = set(zip(frames["method"], frames["seed"].astype(int), strict=True))
    return len(wanted), len(wanted & have)


def _seeds_of(frames: pd.DataFrame, *methods: str) -> tuple[int, ...]:
    """The seeds every one of ``methods`` has committed."""
    sets = [set(_arm(frames, m)["seed"].astype(int)) for m in methods]
    return tuple(sorted(set.intersection(*sets))) if sets else ()


def control_comparison(frames: pd.DataFrame, seeds: tuple[int, ...] | None = None):
    """fully supervised - supervised on the vessel Dice (on ``seeds`` only, when given)."""
    return paired_arms(_arm(frames, CONTROL, seeds), _arm(frames, REFERENCE, seeds), "dice", VESSEL)


def full_control(frames: pd.DataFrame, results: Path):
    """The control's comparison at the full design, or None before all its and supervised's cells are in."""
    total, have = _complete(frames, results, [CONTROL, REFERENCE])
    return control_comparison(frames) if have == total else None


def planned_components(frames: pd.DataFrame, seeds: tuple[int, ...]) -> Components:
    """The variance components a method - supervised difference is planned with, before any method has
    run: two independent trainings on one partition, so twice the supervised arm's seed and
    interaction variance (the partition's share counted in both: conservative), its unit effect not
    at all (a paired difference removes it)."""
    table = arm_table(_arm(frames, REFERENCE, seeds), "dice", VESSEL)
    _, contributions = table.headline()
    own = variance_components(contributions)
    return Components(own.seed * np.sqrt(2), 0.0, own.interaction * np.sqrt(2))


def gate(frames: pd.DataFrame, results: Path) -> dict | None:
    """The gate's numbers, or None before its cells are in."""
    seeds = tuple(s for s in GATE_SEEDS if s in _seeds_of(frames, CONTROL, REFERENCE))
    if len(seeds) < len(GATE_SEEDS):
        return None
    config = load_config(_folder(results) / "config.yaml")
    units = frames["sequence"].nunique()
    control = control_comparison(frames, seeds)
    components = planned_components(frames, seeds)
    mde = expected_mde(components, len(config.seeds), units)
    return {
        "control": control,
        "components": components,
        "mde": mde,
        "seeds": len(config.seeds),
        "units": units,
        "passed": control.significant and control.interval.estimate >= GATE_RATIO * mde,
    }


def gate_table(results: Path) -> str:
    frames = _frames(results)
    if frames is None:
        return _missing(results)
    g = gate(frames, results)
    if g is None:
        total, have = _complete(frames, results, [CONTROL, REFERENCE])
        return f"_The gate's cells (seeds {', '.join(map(str, GATE_SEEDS))}) are not all committed yet._\n"
    control, c = g["control"], g["components"]
    rows = [
        [
            f"{len(GATE_SEEDS)} x {g['units']}",
            control.interval.text(signed=True),
            " / ".join(f"{v:+.3f}" for v in control.per_seed),
            format_p(control.p),
            f"{c.seed:.3f} / {c.interaction:.3f}",
            f"{g['mde']:.3f} ({g['seeds']} x {g['units']})",
            f"{control.interval.estimate / g['mde']:.1f}",
            "go on" if g["passed"] else "re-plan",
        ]
    ]
    headers = [
        "seeds x test sequences",
        "fully supervised − supervised, vessel Dice",
        "per seed",
        "p",
        "planned SD: seed / seed x unit",
        "expected MDE of a method − supervised",
        "gap / MDE",
        f"gate (gap ≥ {GATE_RATIO:g} x MDE)",
    ]
    return markdown_table(headers, rows)


def _shares(results: Path, method: str) -> str:
    training = _training(results)
    rows = training[training["cell"].str.startswith(method + "/")] if not training.empty else training
    if rows.empty or rows["unlabeled_share_run"].isna().all():
        return "–"
    return f"{rows['unlabeled_share_run'].mean():.3f} / {rows['unlabeled_share_end'].mean():.3f}"


def study_table(results: Path) -> str:
    frames = _frames(results)
    if frames is None:
        return _missing(results)
    rows = []
    for method in dict.fromkeys(m for m, _ in _design(results)):
        arm = _arm(frames, method)
        if arm.empty:
            rows.append([_name(method), 0, "not run", "", ""])
            continue
        rows.append(
            [
                _name(method),
                arm["seed"].nunique(),
                arm_interval(arm, "dice", VESSEL).text(),
                arm_interval(arm, "dice").text(),
                _shares(results, method),
            ]
        )
    headers = ["method", "seeds", "vessel Dice", "mean Dice over structures", "unlabeled share, run / end"]
    return markdown_table(headers, rows)


def comparisons(frames: pd.DataFrame, results: Path) -> list[tuple[str, object]]:
    """(method, its comparison with supervised on the vessel Dice) for every method with all its cells
    and supervised's in; the others as (method, None)."""
    out = []
    for method in dict.fromkeys(m for m, _ in _design(results)):
        if method in (REFERENCE,):
            continue
        total, have = _complete(frames, results, [method, REFERENCE])
        if have < total:
            out.append((method, None))
            continue
        out.append((method, paired_arms(_arm(frames, method), _arm(frames, REFERENCE), "dice", VESSEL)))
    return out


def family_p(found: list[tuple[str, object]]) -> dict[str, float]:
    """Each method's Holm-adjusted p (``holm``) in the family of the semi-supervised methods' comparisons
    with supervised (the control is a check of the design, not a member). A method not yet complete
    counts as p = 1, so a verdict given early is never easier than the finished study's."""
    members = [(m, r) for m, r in found if m != CONTROL]
    adjusted = holm([float("nan") if r is None else r.p for _, r in members])
    return {m: p for (m, r), p in zip(members, adjusted, strict=True) if r is not None}


def ranks(frames: pd.DataFrame, methods: list[str]) -> dict[str, int]:
    """1 + the methods significantly better on the vessel Dice (paired by seed and sequence, Holm over
    the pairs)."""
    return significance_ranks(frames, methods, "dice", VESSEL)


def _verdicts(found: list[tuple[str, object]]) -> dict[str, str]:
    """The rule's verdict of each complete comparison with supervised, read in its family (Holm)."""
    adjusted = family_p(found)
    return {m: verdict(r, p_family=adjusted.get(m)) for m, r in found if r is not None}


def comparisons_table(results: Path) -> str:
    frames = _frames(results)
    if frames is None:
        return _missing(results)
    found = comparisons(frames, results)
    complete = [m for m, r in found if r is not None and m != CONTROL]
    everything = all(r is not None for _, r in found)
    g = gate(frames, results)
    ranked = ranks(frames, [REFERENCE, *complete]) if g is not None and g["passed"] and everything else {}
    adjusted, said = family_p(found), _verdicts(found)
    members = sum(1 for m, _ in found if m != CONTROL)
    rows = []
    for method, result in found:
        if result is None:
            total, have = _complete(frames, results, [method, REFERENCE])
            rows.append(["", _name(method), f"incomplete: {have} of {total} cells committed", *[""] * 6])
            continue
        rows.append(
            [
                ranked.get(method, "–"),
                _name(method),
                result.interval.text(signed=True),
                " / ".join(f"{v:+.3f}" for v in result.per_seed),
                format_p(result.p),
                format_p(adjusted[method]) if method in adjusted else "(the control)",
                f"{minimum_detectable_effect(result.interval):.3f}",
                f"{minimum_detectable_effect(result.interval, alpha=ALPHA / members):.3f}"
                if method in adjusted
                else "",
                said[method],
            ]
        )
    if ranked:
        rows.append([ranked[REFERENCE], _name(REFERENCE), "–", *[""] * 6])
    headers = ["rank", "method", "− supervised, vessel Dice [95 %]", "per seed", "p", "p (Holm)", "MDE (80 %)"]
    headers += ["MDE in the family (α / m)", "rule"]
    return markdown_table(headers, rows)


def _pair_rows(frames: pd.DataFrame, results: Path, method: str, reference: str, label: str) -> list[list[str]]:
    """The comparison on the mean over the structures (the prototype rule's primary metric) and on the
    vessel Dice (the study's primary endpoint)."""
    total, have = _complete(frames, results, [method, reference])
    if have < total:
        return [[label, "", f"incomplete: {have} of {total} cells committed", "", "", ""]]
    rows = []
    for endpoint, classes in (("mean over structures", None), ("vessel", VESSEL)):
        result = paired_arms(_arm(frames, method), _arm(frames, reference), "dice", classes)
        rows.append(
            [
                label,
                endpoint,
                result.interval.text(signed=True),
                " / ".join(f"{v:+.3f}" for v in result.per_seed),
                f"{minimum_detectable_effect(result.interval):.3f}",
                verdict(result),
            ]
        )
    return rows


def arms_table(results: Path) -> str:
    frames = _frames(results)
    if frames is None:
        return _missing(results)
    rows = _pair_rows(frames, results, "diffproto", "diffproto_noproto", "DiffProto − DiffProto without prototypes")
    rows += _pair_rows(frames, results, "mean_teacher_joint", "mean_teacher", "Mean Teacher, joint − separate forward")
    headers = ["comparison", "endpoint", "difference [95 %]", "per seed", "MDE (80 %)", "rule"]
    return markdown_table(headers, rows)


def summary(results: Path) -> str:
    """The study's answer in sentences (README and docs/results.md): the gate, which methods beat the
    supervised bound and by how much, where DiffProto stands; or how far the study has come."""
    frames = _frames(results)
    if frames is None:
        return _missing(results)
    total, have = _complete(frames, results, [m for m, _ in _design(results)])
    g = gate(frames, results)
    if g is None:
        return f"_In progress: {have} of {total} cells committed; the gate's cells are not all in._\n"
    control = g["control"]
    lines = [
        f"The positive control (every label against 5 %) is {_signed(control.interval.estimate)} vessel Dice "
        f"on the gate's {len(GATE_SEEDS)} seeds, {control.interval.estimate / g['mde']:.1f} times the design's "
        f"expected MDE of {g['mde']:.3f}: the gate {'passes' if g['passed'] else 'fails, and the study re-plans'}."
    ]
    full = full_control(frames, results)
    if full is not None:
        seen = "detected" if verdict(full) == "better" else "**not detected**: the study ranks nothing"
        lines.append(
            f"At the full design ({full.interval.seeds} seeds x {g['units']} sequences) the control is "
            f"{full.interval.text(signed=True)}: {seen}."
        )
    if have < total:
        lines.append(
            f"In progress: {have} of {total} cells committed; methods are compared once all their cells are in."
        )
    everything = comparisons(frames, results)
    said = _verdicts(everything)
    found = [(m, r) for m, r in everything if r is not None and m != CONTROL]
    better = [(m, r) for m, r in found if said[m] == "better"]
    worse = [(m, r) for m, r in found if said[m] == "worse"]
    if found:
        named = "; ".join(f"{_name(m)} {r.interval.text(signed=True)}" for m, r in better) or "none"
        lines.append(f"Better than supervised on the vessel Dice by the rule: {named}.")
        if worse:
            lines.append("Worse: " + "; ".join(f"{_name(m)} {r.interval.text(signed=True)}" for m, r in worse) + ".")
        mdes = sorted(minimum_detectable_effect(r.interval) for _, r in found)
        lines.append(
            f"The comparisons' median MDE is {float(np.median(mdes)):.3f} vessel Dice ({len(found)} comparisons)."
        )
        proto = dict(found).get("diffproto")
        if proto is not None:
            lines.append(f"DiffProto − supervised: {proto.interval.text(signed=True)} ({said['diffproto']}).")
        prototype = _prototype_verdict(frames, results)
        if prototype:
            lines.append(prototype)
    return " ".join(lines) + "\n"


def _prototype_verdict(frames: pd.DataFrame, results: Path) -> str:
    """DiffProto's pre-registered prototype verdict in a sentence (its primary metric, the mean Dice over
    the structures), or "" before both arms are complete."""
    total, have = _complete(frames, results, ["diffproto", "diffproto_noproto"])
    if have < total:
        return ""
    result = paired_arms(_arm(frames, "diffproto"), _arm(frames, "diffproto_noproto"), "dice", None)
    return (
        "Its prototype term (DiffProto − DiffProto without prototypes, mean Dice over the structures): "
        f"{result.interval.text(signed=True)} ({verdict(result)})."
    )


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def _per_method(results: Path, methods: list[str], column: str, summary) -> str:
    """One training.csv column summarised per method over its committed seeds ("Name value, ..."), or "–"."""
    training = _training(results)
    parts = []
    for method in methods:
        rows = training[training["cell"].str.startswith(method + "/")] if not training.empty else training
        if not rows.empty and not rows[column].isna().all():
            parts.append(f"{_name(method)} {summary(rows[column])}")
    return ", ".join(parts) if parts else "–"


def _share_range(results: Path, methods: list[str]) -> str:
    return _per_method(results, methods, "unlabeled_share_end", lambda share: f"{share.mean():.1%}")


def _best_steps(results: Path, methods: list[str]) -> str:
    """Each method's best validation step (the checkpoint its test scores come from), median over seeds:
    a checkpoint from before the ramp ends is one the unlabeled terms barely trained."""
    return _per_method(results, methods, "best_step", lambda step: f"{step.median():.0f}")


def _replan(frames: pd.DataFrame, results: Path, methods: list[str]) -> str:
    """Why the comparisons' MDE exceeds the goal and what would reach it: the gate planned from the
    supervised arm alone, which cannot see how much a method's gain itself changes from seed to seed."""
    components = [paired_components(_arm(frames, m), _arm(frames, REFERENCE), "dice", VESSEL) for m in methods]
    units = frames["sequence"].nunique()
    needed = seeds_for_mde(components, MDE_GOAL, units)
    g = gate(frames, results)
    planned = f"the gate planned {g['mde']:.3f} from the supervised arm's own spread; " if g else ""
    seed_sd = float(np.median([c.seed for c in components]))
    reach = f"{needed} seeds" if needed is not None else "more than 100 seeds"
    return (
        f"Why above the goal: {planned}the methods' gains themselves change from seed to seed (the seed SD "
        f"of a difference with supervised, median over the comparisons: {seed_sd:.3f} vessel Dice), which no "
        f"arm alone shows. At the variance components the comparisons measured, their median MDE reaches "
        f"{MDE_GOAL} at {reach} (a projection: each comparison's expected MDE at {units} sequences)."
    )


def reading(results: Path) -> str:
    """What the study shows, in sentences made from its results (docs/results.md)."""
    frames = _frames(results)
    if frames is None:
        return _missing(results)
    total, have = _complete(frames, results, [m for m, _ in _design(results)])
    semi = [m for m in dict.fromkeys(m for m, _ in _design(results)) if m not in (REFERENCE, CONTROL)]
    lines = []
    if have < total:
        lines.append(
            f"In progress: {have} of {total} cells committed. A method is compared with the supervised bound "
            "once all its seeds are in, in the family of every semi-supervised method (Holm; a method not yet "
            "complete counts as p = 1, so no verdict comes easier early than at the end); ranks wait for every cell."
        )
    everything = comparisons(frames, results)
    found = [(m, r) for m, r in everything if r is not None and m != CONTROL]
    if found:
        mdes = [minimum_detectable_effect(r.interval) for _, r in found]
        median = float(np.median(mdes))
        said = _verdicts(everything)
        better = [f"{_name(m)} ({r.interval.text(signed=True)})" for m, r in found if said[m] == "better"]
        worse = [f"{_name(m)} ({r.interval.text(signed=True)})" for m, r in found if said[m] == "worse"]
        neither = [_name(m) for m, _ in found if said[m] not in ("better", "worse")]
        lines.append(
            f"Against the supervised bound on the vessel Dice, by the rule: better: {', '.join(better) or 'none'}; "
            f"worse: {', '.join(worse) or 'none'}; no detectable difference: {', '.join(neither) or 'none'}. "
            f"The comparisons' median MDE is {median:.3f} ({'within' if median <= MDE_GOAL else 'above'} the "
            f"study's goal of {MDE_GOAL})."
        )
        if median > MDE_GOAL:
            lines.append(_replan(frames, results, [m for m, _ in found]))
    lines.append(
        f"The unlabeled terms' share of the loss over the last tenth of training: {_share_range(results, semi)}."
    )
    rampup, iterations = _schedule(results)
    lines.append(
        "The best validation step, whose checkpoint is scored (median over the seeds in; the unlabeled terms "
        f"ramp over the first {rampup} of {iterations} steps): "
        f"{_best_steps(results, list(dict.fromkeys(m for m, _ in _design(results))))}."
    )
    return "\n\n".join(lines) + "\n"
