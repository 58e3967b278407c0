"""Server-rendered pages: the challenge and its public table, sign-in, a team's page and the upload form.

Self-contained: inline CSS, scripts only from this server (``/static/*.js``, so the Content-Security-
Policy can forbid inline script), no external network. Every value is HTML-escaped and every name a
team chose sits in ``<bdi>``, so right-to-left text cannot reorder the cells around it. The CSRF token
travels in a hidden field or the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import html
from datetime import datetime

import pandas as pd

from mosxav_leaderboard.columns import Column, columns_for
from mosxav_leaderboard.render import cell, with_display_columns
from mosxav_leaderboard.service.board_view import Group
from mosxav_leaderboard.service.database import Job
from mosxav_leaderboard.service.settings import Phase, Settings

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:80rem;padding:0 1rem;color:#222}
nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap} table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:right;max-width:24rem}
th{background:#f4f4f4;cursor:pointer;user-select:none;white-space:nowrap} td.l,th.l{text-align:left}
td{white-space:nowrap} td.l{white-space:normal;overflow-wrap:anywhere}
.failed{color:#a00} .scored{color:#060} .muted{color:#777} tr.reference td{color:#555;font-style:italic}
progress{width:20rem} form.inline,form.signout{display:inline} .phases td{text-align:left}
"""

BOARD_JS = """
document.querySelectorAll('table.board').forEach(function (table) {
  const body = table.tBodies[0], heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach(function (th, i) {
    th.addEventListener('click', function () {
      const asc = !th.classList.contains('asc');
      heads.forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = a.cells[i].dataset.v, y = b.cells[i].dataset.v, nx = parseFloat(x), ny = parseFloat(y);
        const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
const filter = document.getElementById('filter');
if (filter) {
  filter.addEventListener('input', function () {
    const needle = filter.value.toLowerCase();
    document.querySelectorAll('table.board tbody tr').forEach(function (r) {
      r.style.display = r.textContent.toLowerCase().includes(needle) ? '' : 'none';
    });
  });
}
"""

UPLOAD_JS = """
const form = document.getElementById('upload');
form.addEventListener('submit', function (event) {
  event.preventDefault();
  const bar = document.getElementById('progress'), status = document.getElementById('status');
  const request = new XMLHttpRequest();
  request.open('POST', '/api/submissions');
  request.setRequestHeader('X-CSRF-Token', form.dataset.csrf);
  bar.hidden = false;
  request.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = 100 * e.loaded / e.total; };
  request.onload = function () {
    let answer = {};
    try { answer = JSON.parse(request.responseText || '{}'); } catch (e) { answer = {}; }
    if (request.status === 202) { status.textContent = 'queued as #' + answer.id; location.href = '/team'; }
    else { status.textContent = 'refused: ' + (answer.detail || request.status); }
  };
  request.send(new FormData(form));
});
"""

SCRIPTS = {"board.js": BOARD_JS, "upload.js": UPLOAD_JS}
TEAM_JOB_COLUMNS = ("Submission", "Phase", "File", "Status", "Submitted", "Visibility", "Problems")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def layout(settings: Settings, title: str, body: str, signed: tuple[str, str] | None = None, refresh: int = 0) -> str:
    """The page frame; ``signed`` is (team, CSRF token) when a team is signed in."""
    if signed is None:
        who = '<a href="/signin">sign in</a>'
    else:
        team, csrf = signed
        who = (
            f"signed in as <b><bdi>{_e(team)}</bdi></b> <a href='/team'>team page</a> <a href='/upload'>upload</a> "
            f"<form class='signout' method='post' action='/signout'><input type='hidden' name='csrf' "
            f"value='{_e(csrf)}'><button type='submit'>sign out</button></form>"
        )
    meta = f"<meta http-equiv='refresh' content='{refresh}'>" if refresh else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{meta}<title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body><nav><a href='/'>{_e(settings.title)}</a>{who}</nav>"
        f"<h1>{_e(title)}</h1>{body}<script src='/static/board.js'></script></body></html>"
    )


def _format(spec: Column, value: object) -> str:
    if spec.key == "parameters" and isinstance(value, (int, float)) and value == value:
        return f"{value / 1e6:.2f}M" if value >= 1e4 else f"{int(value)}"
    if spec.key == "seeds" and isinstance(value, list):
        return str(len(value))
    if spec.key == "submitted" and isinstance(value, str):
        return value[:10]
    return cell(spec, value)


def _sort_value(spec: Column, value: object) -> str:
    if spec.key == "seeds" and isinstance(value, list):
        return str(len(value))
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def table_html(table: pd.DataFrame, view: str) -> str:
    """A sortable table of ``view``'s columns (``columns.py``), names isolated, links beside methods."""
    shown = with_display_columns(table)
    columns = columns_for(view, list(shown.columns))
    head = "".join(f"<th class='{'l' if c.text else ''}' data-key='{_e(c.key)}'>{_e(c.header)}</th>" for c in columns)
    rows = []
    for index, row in shown.iterrows():
        cells = []
        for spec in columns:
            value = row[spec.key]
            text = _e(_format(spec, value))
            if spec.text:
                text = f"<bdi>{text}</bdi>"
            if spec.key == "method":
                links = [
                    f"<a href='{_e(table.loc[index, key])}' rel='nofollow noopener'>{label}</a>"
                    for key, label in (("code_url", "code"), ("paper_url", "paper"))
                    if isinstance(table.loc[index, key], str) and table.loc[index, key]
                ]
                text = " ".join([text, *links])
            align = "l" if spec.text else ""
            cells.append(f"<td class='{align}' data-v='{_e(_sort_value(spec, value))}'>{text}</td>")
        css = "reference" if bool(row.get("reference")) else ""
        rows.append(f"<tr class='{css}' data-id='{_e(row['id'])}'>" + "".join(cells) + "</tr>")
    return f"<table class='board'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _date(moment: datetime | None) -> str:
    return "–" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def phases_html(phases: tuple[Phase, ...], now: datetime) -> str:
    rows = "".join(
        f"<tr><td>{_e(p.name)}</td><td>{_e(p.state(now))}</td><td>{_date(p.opens)}</td><td>{_date(p.closes)}</td>"
        f"<td>{_date(p.freeze)}</td><td>{p.per_day}</td><td>{_e(p.description)}</td></tr>"
        for p in phases
    )
    head = "<tr><th>Phase</th><th>State</th><th>Opens</th><th>Closes</th><th>Freeze</th><th>Per day</th><th>About</th>"
    return f"<table class='phases'><thead>{head}</tr></thead><tbody>{rows}</tbody></table>"


def public_page(settings: Settings, groups: list[Group], signed: tuple[str, str] | None, now: datetime) -> str:
    """The challenge, its phases and one ranked table per (phase, labeled fraction)."""
    parts = [f"<p>{_e(settings.description)}</p>", "<h2>Phases</h2>", phases_html(settings.phases, now)]
    if not groups:
        parts.append("<p>No published results yet.</p>")
    else:
        parts.append(
            "<p><label>Filter rows <input id='filter' type='search' placeholder='method, team or provenance'>"
            "</label></p>"
        )
    for group in groups:
        part = {"public": " (public part of the sequences)", "private": " (private part: final)"}.get(
            group.part or "", ""
        )
        parts.append(f"<h2>{_e(group.phase)} phase{part}, labeled fraction {group.labeled_fraction:g}</h2>")
        parts.append(table_html(group.rows, "public"))
    parts.append(
        "<p class='muted'>Dice: macro mean over structures. Each row is one training: its 95% interval covers test "
        "sequences only (none under 6 sequences); ranks tie where "
        "intervals overlap; p vs leader: paired sign-flip permutation test. One row per team and group (the "
        f"organizers' rule: its {settings.team_rows}). Click a header to sort.</p>"
        "<p class='muted'>Provenance: <b>predictions</b>, masks a team uploaded (the team ran its own method); "
        "<b>model</b>, masks this server predicted from the weights a team uploaded, with the benchmark's own "
        "prediction code (the method is what ran); <b>reference</b>, a run of <code>mosxav-bench run</code> "
        "by the organizers, trained and predicted by the harness (italic rows).</p>"
    )
    return layout(settings, settings.title, "".join(parts), signed)


def signin_page(settings: Settings, message: str = "") -> str:
    warn = f"<p class='failed'>{_e(message)}</p>" if message else ""
    body = (
        f"{warn}<form method='post' action='/signin'><label>Team token <input name='token' type='password' "
        "autocomplete='off' size='60'></label> <button type='submit'>Sign in</button></form>"
    )
    return layout(settings, "Sign in", body)


def _left_html(left: dict[str, tuple[int, int]]) -> str:
    if not left:
        return "<p>No phase is open.</p>"
    parts = [f"{_e(phase)}: {max(limit - used, 0)} of {limit}" for phase, (used, limit) in left.items()]
    return "<p>Submissions left today (UTC): " + ", ".join(parts) + ".</p>"


def rules_html(settings: Settings) -> str:
    """The rules a team plays by, as the service applies them (the same words on every page that acts)."""
    return (
        "<p class='muted rules'>Rules: a submission refused before it runs costs nothing; one that ran "
        "counts against the daily limit even if it failed (a model that used its CPU time counts). At most "
        f"{settings.max_queued} of a team's submissions wait or are scored at once, and the workers take "
        "teams in turn: the team with the fewest jobs being scored, then the least CPU time used today, "
        "first. What a team has published when a phase closes is final: publishing and withdrawing are "
        "closed with the phase.</p>"
    )


def _job_row(job: Job, csrf: str) -> str:
    problems = ""
    if job.problems:
        items = "".join(f"<li><code>{_e(p['path'])}</code>: {_e(p['message'])}</li>" for p in job.problems)
        problems = f"<details><summary>{len(job.problems)} problem(s)</summary><ul>{items}</ul></details>"
    action = ""
    if job.status == "scored":
        verb, flag = ("unpublish", "0") if job.published else ("publish", "1")
        action = (
            f"<form class='inline' method='post' action='/team/submissions/{job.id}/publish'>"
            f"<input type='hidden' name='csrf' value='{_e(csrf)}'><input type='hidden' name='published' "
            f"value='{flag}'><button type='submit'>{verb}</button></form>"
        )
    return (
        f"<tr id='job-{job.id}'><td>{job.id}</td><td class='l'>{_e(job.phase)}</td><td class='l'>{_e(job.filename)}"
        f"</td><td class='l {job.status}'>{_e(job.status)}</td><td>{_e(job.created)}</td>"
        f"<td class='l'>{'published' if job.published else 'private'} {action}</td><td class='l'>{problems}</td></tr>"
    )


def team_page(
    settings: Settings, team: str, csrf: str, jobs: list[Job], scores: pd.DataFrame, left: dict[str, tuple[int, int]]
) -> str:
    """A team's submissions, their problems or scores, and what is left today; refreshes while a job runs."""
    head = "".join(f"<th class='l'>{name}</th>" for name in TEAM_JOB_COLUMNS)
    rows = "".join(_job_row(job, csrf) for job in jobs)
    body = _left_html(left) + rules_html(settings)
    body += f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>" if jobs else "<p>No submissions.</p>"
    if not scores.empty:
        body += "<h2>Scores</h2>" + table_html(scores, "team")
    running = any(job.status in ("queued", "scoring") for job in jobs)
    return layout(settings, f"{team}: submissions", body, (team, csrf), refresh=5 if running else 0)


def upload_page(settings: Settings, team: str, csrf: str, left: dict[str, tuple[int, int]]) -> str:
    """The upload form: the open phases only (``left`` holds them), and the model option where the
    service runs models."""
    options = "".join(
        f"<option value='{_e(name)}'{' selected' if name == 'test' else ''}>{_e(name)}</option>" for name in left
    )
    kinds = ""
    if settings.models.enabled:
        kinds = (
            "<p><label>Kind <select name='kind'><option value='predictions' selected>predictions (masks)</option>"
            "<option value='model'>model (the server predicts with "
            + _e(", ".join(settings.models.methods))
            + ")</option></select></label></p>"
        )
    body = f"""{_left_html(left)}
<form id="upload" method="post" action="/api/submissions" enctype="multipart/form-data" data-csrf="{_e(csrf)}">
<p><label>Submission (.zip of the folder with submission.yaml) <input type="file" name="file" accept=".zip"
 required></label></p>
<p><label>Phase <select name="phase">{options}</select></label></p>
{kinds}
<p><button type="submit">Upload</button> <progress id="progress" value="0" max="100" hidden></progress>
<span id="status"></span></p></form>
<p class="muted">Largest upload: {settings.max_upload_bytes // 1024**2} MiB.</p>
{rules_html(settings)}
<script src="/static/upload.js"></script>"""
    return layout(settings, "Upload a submission", body, (team, csrf))
