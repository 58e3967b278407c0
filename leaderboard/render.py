"""The table in every format a person or a program wants: Markdown, CSV, JSON, a self-contained HTML
page (sortable, filterable by labeled fraction, per-structure chart, links to code and papers, no
network), and a ``rich`` table for the terminal."""

from __future__ import annotations

import html
import json
import math

import pandas as pd
from rich.table import Table

from mosxav.evaluation.uncertainty import MIN_UNITS
from mosxav.harness.report import markdown_table
from mosxav_leaderboard.columns import Column, columns_for, structure_keys


def format_cell(value, digits: int = 3) -> str:
    """A table cell as text: '–' for missing, yes/no, floats to ``digits`` places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def with_display_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table plus the columns derived for display (the interval as text, the fraction as %g)."""
    view = table.copy()
    view["labeled_fraction"] = [f"{f:g}" for f in view["labeled_fraction"]]
    bounds = zip(view["dice_lo"], view["dice_hi"], strict=True)
    view["dice_ci"] = ["–" if math.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]" for lo, hi in bounds]
    return view


def cell(spec: Column, value: object) -> str:
    """A value as its column shows it."""
    return format_cell(value, spec.digits)


def to_markdown(table: pd.DataFrame) -> str:
    """One section per (dataset, labeled fraction), each ranked on its own, with readable headers."""
    if table.empty:
        return "_No submissions yet._\n"
    view = with_display_columns(table)
    columns = columns_for("md", list(view.columns))
    sections = []
    for (dataset, fraction), group in view.groupby(["dataset", "labeled_fraction"], sort=False):
        rows = []
        for index, row in group.iterrows():
            cells = [cell(c, row[c.key]) for c in columns]
            url = table.loc[index, "code_url"]
            cells[[c.key for c in columns].index("method")] = f"[{row['method']}]({url})" if url else row["method"]
            rows.append(cells)
        sections.append(
            f"### {dataset}, labeled fraction {fraction}\n\n" + markdown_table([c.header for c in columns], rows)
        )
    note = (
        "\nDice: macro mean over structures. Each row is one training: its 95% interval (t with a bootstrap standard "
        "error) covers test-sequence variation only, not another training of the same method; none under "
        f"{MIN_UNITS} sequences. Rank ties where intervals overlap; p vs leader: paired sign-flip permutation test "
        "of per-sequence Dice against the best entry of the same group.\n"
    )
    return "\n".join(sections) + note


def to_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False, float_format="%.6f")


def to_json(table: pd.DataFrame) -> str:
    return json.dumps(json.loads(table.to_json(orient="records")), indent=2)


def to_rich(table: pd.DataFrame, title: str = "MOSXAV-Bench leaderboard") -> Table:
    """The terminal view: the headline columns (and per-structure Dice when asked), narrow headers."""
    out = Table(title=title)
    if table.empty:
        out.add_column("no submissions yet")
        return out
    view = with_display_columns(table)
    columns = columns_for("terminal", list(view.columns))
    rows = [[cell(c, row[c.key]) for c in columns] for _, row in view.iterrows()]
    for k, spec in enumerate(columns):
        # numbers and intervals keep their width on a narrow terminal (never cut); text columns fold
        width = None if spec.text else max([len(spec.short), *(len(r[k]) for r in rows)])
        justify = "left" if spec.text else "right"
        out.add_column(spec.short, justify=justify, no_wrap=not spec.text, min_width=width, overflow="fold")
    for values in rows:
        out.add_row(*values)
    return out


def _chart(table: pd.DataFrame) -> str:
    """Inline SVG: per-structure Dice for each entry (grouped bars)."""
    structure = structure_keys(list(table.columns))
    if table.empty or not structure:
        return ""
    palette = [
        "#4c72b0",
        "#dd8452",
        "#55a868",
        "#c44e52",
        "#8172b3",
        "#937860",
        "#da8bc3",
        "#8c8c8c",
        "#ccb974",
        "#64b5cd",
    ]
    entries = table.head(10)
    bar, gap = 14, 80
    width = max(60 + len(structure) * (len(entries) * bar + gap), 60 + len(entries) * 170)
    parts = [
        f'<svg id="chart" width="{width}" height="260" role="img" aria-label="Dice per structure">',
        '<line x1="50" y1="210" x2="%d" y2="210" stroke="#333"/>' % width,
    ]
    for tick in (0, 0.5, 1.0):
        y = 210 - tick * 180
        parts.append(f'<text x="44" y="{y + 4:.0f}" font-size="10" text-anchor="end">{tick:.1f}</text>')
    for s, column in enumerate(structure):
        x0 = 60 + s * (len(entries) * bar + gap)
        label_x = x0 + len(entries) * bar / 2
        parts.append(
            f'<text x="{label_x:.0f}" y="226" font-size="10" text-anchor="middle">{html.escape(column[5:])}</text>'
        )
        for e, (_, row) in enumerate(entries.iterrows()):
            value = row[column] if isinstance(row[column], float) and not math.isnan(row[column]) else 0.0
            h = value * 180
            parts.append(
                f'<rect x="{x0 + e * bar}" y="{210 - h:.1f}" width="{bar - 1}" height="{h:.1f}" '
                f'fill="{palette[e % len(palette)]}">'
                f"<title>{html.escape(str(row['method']))} #{row['id']}: {value:.3f}</title></rect>"
            )
    for e, (_, row) in enumerate(entries.iterrows()):
        parts.append(
            f'<rect x="{60 + e * 150}" y="240" width="10" height="10" fill="{palette[e % len(palette)]}"/>'
            f'<text x="{74 + e * 150}" y="249" font-size="10">'
            f"{html.escape(str(row['method']))[:20]} #{row['id']}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MOSXAV-Bench leaderboard</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:14px}
th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#f4f4f4;user-select:none}
td.l,th.l{text-align:left}tr.reference td{color:#555;font-style:italic}
th.sorted-asc:after{content:" \\25B2"}th.sorted-desc:after{content:" \\25BC"}
</style></head><body>
<h1>MOSXAV-Bench leaderboard</h1>
<p>Dice: frame-weighted macro mean over structures on the test split each row was scored on (its dataset and
ground-truth hash). Each row is one training: its 95% interval covers
test sequences only (none under 6 sequences); equal ranks where intervals overlap;
p: paired permutation test against the best entry at the same labeled fraction.
Italic rows are reference runs of <code>mosxav-bench run</code>.
Metric version __METRIC__.</p>
<label>Labeled fraction: <select id="fraction"><option value="all">all</option>__OPTIONS__</select></label>
<table id="board"><thead><tr>__HEAD__</tr></thead><tbody>__BODY__</tbody></table>
<h2>Dice per structure</h2>
__CHART__
<script>
(function(){
  const table=document.getElementById('board'), body=table.tBodies[0], heads=Array.from(table.querySelectorAll('th'));
  function sortBy(i, asc){
    heads.forEach(h=>h.classList.remove('sorted-asc','sorted-desc'));
    heads[i].classList.add(asc?'sorted-asc':'sorted-desc');
    const rows=Array.from(body.rows);
    rows.sort((a,b)=>{const x=a.cells[i].dataset.v, y=b.cells[i].dataset.v;
      const nx=parseFloat(x), ny=parseFloat(y);
      const c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));
      return asc?c:-c;});
    rows.forEach(r=>body.appendChild(r));
  }
  function filter(value){
    Array.from(body.rows).forEach(r=>{r.style.display=(value==='all'||r.dataset.fraction===value)?'':'none';});
  }
  heads.forEach((th,i)=>th.addEventListener('click',()=>sortBy(i,!th.classList.contains('sorted-asc'))));
  const select=document.getElementById('fraction');
  select.addEventListener('change',e=>filter(e.target.value));
  // Shareable views: #sort=<column>:<asc|desc>&fraction=<f>
  const params=new URLSearchParams(location.hash.slice(1));
  if(params.get('sort')){const [key,dir]=params.get('sort').split(':');
    const i=heads.findIndex(h=>h.dataset.key===key); if(i>=0) sortBy(i, dir!=='desc');}
  if(params.get('fraction')){select.value=params.get('fraction'); filter(params.get('fraction'));}
})();
</script></body></html>
"""


def to_html(table: pd.DataFrame, metric_version: str = "") -> str:
    """A self-contained page: inline CSS, JS and SVG; links only to the entries' code and papers."""
    view = with_display_columns(table) if not table.empty else table
    columns = columns_for("html", list(view.columns)) if not table.empty else []
    head = "".join(
        f'<th class="{"l" if c.text else ""}" data-key="{html.escape(c.key)}">{html.escape(c.header)}</th>'
        for c in columns
    )
    body = []
    for idx, row in view.iterrows():
        cells = []
        for spec in columns:
            value = row[spec.key]
            sort_value = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
            text = html.escape(cell(spec, value))
            if spec.key == "method":
                links = [
                    f'<a href="{html.escape(table.loc[idx, k])}">{label}</a>'
                    for k, label in (("code_url", "code"), ("paper_url", "paper"))
                    if table.loc[idx, k]
                ]
                text = f"<bdi>{text}</bdi> " + " · ".join(links) if links else f"<bdi>{text}</bdi>"
            align = "l" if spec.text else ""
            cells.append(f'<td class="{align}" data-v="{html.escape(str(sort_value))}">{text}</td>')
        css = "reference" if row["reference"] else ""
        body.append(
            f'<tr class="{css}" data-id="{row["id"]}" data-fraction="{row["labeled_fraction"]}">'
            + "".join(cells)
            + "</tr>"
        )
    fractions = sorted(table["labeled_fraction"].unique()) if not table.empty else []
    options = "".join(f'<option value="{f:g}">{f:g}</option>' for f in fractions)
    return (
        PAGE.replace("__HEAD__", head)
        .replace("__BODY__", "\n".join(body))
        .replace("__OPTIONS__", options)
        .replace("__CHART__", _chart(table))
        .replace("__METRIC__", html.escape(metric_version))
    )
