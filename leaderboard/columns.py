"""The leaderboard's columns, written once: what each holds, its header, its format and where it shows.

``build_table`` orders its data by this table; Markdown, CSV, JSON, the static HTML page, the terminal
view and the service's pages each pick their columns from it with ``columns_for``. Per-structure Dice
columns (``dice_<structure>``) take the place of the ``STRUCTURES`` marker.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What a team submits: its masks, or a model (card and weights) the server runs to make them.
SUBMISSION_KINDS = ("predictions", "model")
#: Where a row's numbers come from: what a team submitted (its kind), or a run of the harness by the
#: organizers (stored with each row: ``tables.submissions``).
PROVENANCES = (*SUBMISSION_KINDS, "reference")
#: The views a column can appear in.
VIEWS = ("md", "html", "terminal", "public", "team")
STRUCTURES = "dice_*"


@dataclass(frozen=True)
class Column:
    """One column.

    Args:
        key: the data column (``build_table``'s, or one derived for display such as ``dice_ci``).
        header: what a person reads.
        short: the narrow terminal header.
        digits: decimals shown for a float.
        text: left-aligned text (names) rather than right-aligned numbers.
        views: where it is shown; the data (CSV, JSON) holds every stored column.
        stored: whether ``build_table`` returns it (False: derived when shown, or added by the service).
    """

    key: str
    header: str
    short: str
    digits: int = 3
    text: bool = False
    views: frozenset[str] = frozenset()
    stored: bool = True


def _views(*names: str) -> frozenset[str]:
    unknown = set(names) - set(VIEWS)
    if unknown:
        raise ValueError(f"unknown view(s) {sorted(unknown)}")
    return frozenset(names)


EVERYWHERE = _views(*VIEWS)
COLUMNS: tuple[Column, ...] = (
    Column("rank", "Rank", "#", views=_views("md", "html", "terminal", "public")),
    Column("id", "ID", "id", views=_views("md", "html", "terminal", "public", "team")),
    Column("method", "Method", "method", text=True, views=EVERYWHERE),
    Column("team", "Team", "team", text=True, views=_views("public"), stored=False),
    Column("dataset", "Dataset", "dataset", text=True, views=_views("html")),
    Column("labeled_fraction", "Labeled fraction", "labeled", views=_views("html", "terminal", "team")),
    Column("dice", "Dice", "Dice", views=EVERYWHERE),
    Column("dice_lo", "Dice 95% CI low", "lo"),
    Column("dice_hi", "Dice 95% CI high", "hi"),
    Column("dice_ci", "Dice (95% CI)", "95% CI", views=EVERYWHERE, stored=False),
    Column(STRUCTURES, "Dice: {structure}", "{structure}", views=EVERYWHERE),
    Column("iou", "IoU", "IoU", views=_views("md", "html", "public", "team")),
    Column("hd95", "HD95 (px)", "HD95", digits=2, views=EVERYWHERE),
    Column("assd", "ASSD (px)", "ASSD", digits=2, views=EVERYWHERE),
    Column("p_vs_leader", "p vs leader", "p", views=_views("md", "html", "terminal", "public")),
    Column("reference", "Reference run", "ref"),
    # predictions (uploaded masks), model (predicted by the server from uploaded weights) or reference
    # (trained and predicted by the harness), stored with the row (PROVENANCES above).
    Column("provenance", "Provenance", "from", text=True, views=EVERYWHERE),
    Column("extra_data", "Extra data", "extra", views=_views("md", "html", "public")),
    Column("parameters", "Parameters", "params", views=_views("public")),
    Column("seeds", "Seeds", "seeds", views=_views("public")),
    Column("authors", "Authors", "authors", text=True),
    Column("code_url", "Code", "code", text=True),
    Column("paper_url", "Paper", "paper", text=True),
    Column("submitted", "Submitted", "submitted", text=True, views=_views("public", "team")),
    Column("dataset_hash", "Ground truth", "gt", text=True),
    Column("metric_version", "Metric version", "metric", text=True),
    Column("toolkit_version", "Toolkit version", "toolkit", text=True),
)
BY_KEY = {c.key: c for c in COLUMNS}


def structure_keys(keys: list[str] | tuple[str, ...]) -> list[str]:
    """The per-structure Dice columns among ``keys`` (``dice_vessel`` ...), in their order."""
    fixed = {c.key for c in COLUMNS}
    return [k for k in keys if k.startswith("dice_") and k not in fixed]


def column(key: str) -> Column:
    """The column for ``key``; a per-structure key gets the structure's name in its headers."""
    if key in BY_KEY:
        return BY_KEY[key]
    if key.startswith("dice_"):
        name = key[5:].replace("_", " ")
        marker = BY_KEY[STRUCTURES]
        header, short = marker.header.format(structure=name), marker.short.format(structure=name)
        return Column(key, header, short, views=marker.views)
    raise KeyError(key)


def stored_order(keys: list[str]) -> list[str]:
    """``keys`` (a table's data columns) in the table's order, per-structure columns at the marker."""
    present = set(keys)
    ordered: list[str] = []
    for spec in COLUMNS:
        if spec.key == STRUCTURES:
            ordered += structure_keys(keys)
        elif spec.key in present:
            ordered.append(spec.key)
    return ordered + [k for k in keys if k not in set(ordered)]


def columns_for(view: str, keys: list[str] | tuple[str, ...]) -> list[Column]:
    """The columns ``view`` shows, in order, among those available (``keys`` plus derived ones)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    available = set(keys)
    if {"dice_lo", "dice_hi"} <= available:
        available.add("dice_ci")
    shown: list[Column] = []
    for spec in COLUMNS:
        if view not in spec.views:
            continue
        if spec.key == STRUCTURES:
            shown += [column(k) for k in structure_keys(list(keys))]
        elif spec.key in available:
            shown.append(spec)
    return shown


__all__ = [
    "COLUMNS",
    "PROVENANCES",
    "SUBMISSION_KINDS",
    "Column",
    "VIEWS",
    "column",
    "columns_for",
    "stored_order",
    "structure_keys",
]
