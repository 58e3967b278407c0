"""Server-rendered pages: the public table, sign-in, a team's page and the upload form.

Self-contained like the static leaderboard page: inline CSS and JavaScript, no external network. Every
value is HTML-escaped; the CSRF token travels in a hidden field or the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import html

import pandas as pd

from mosxav_leaderboard.render import READABLE, format_cell, readable
from mosxav_leaderboard.service.jobs import Job

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
nav a{margin-right:1rem} table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:right} th{background:#f4f4f4}
td.l,th.l{text-align:left} .failed{color:#a00} .scored{color:#060} .muted{color:#777}
progress{width:20rem} form.inline{display:inline}
"""

PUBLIC_COLUMNS = ["rank", "method", "dice", "dice_ci", "iou", "hd95", "assd", "p_vs_leader", "reference", "extra_data"]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def layout(title: str, body: str, team: str | None = None) -> str:
    who = '<a href="/signin">sign in</a>'
    if team:
        who = f'signed in as <b>{_e(team)}</b> · <a href="/team">team page</a> · <a href="/upload">upload</a>'
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body><nav><a href='/'>leaderboard</a>{who}</nav>"
        f"<h1>{_e(title)}</h1>{body}</body></html>"
    )


def table_html(table: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th class='{'l' if c == 'method' else ''}'>{_e(readable(c))}</th>" for c in columns)
    rows = []
    for _, row in table.iterrows():
        cells = []
        for c in columns:
            value = format_cell(row.get(c))
            if c == "method" and row.get("code_url"):
                cells.append(f"<td class='l'><a href='{_e(row['code_url'])}'>{_e(value)}</a></td>")
            else:
                cells.append(f"<td class='{'l' if c == 'method' else ''}'>{_e(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def public_page(groups: list[tuple[str, float, pd.DataFrame]], team: str | None) -> str:
    """One ranked table per (phase, labeled fraction)."""
    if not groups:
        return layout("MOSXAV-Bench leaderboard", "<p>No published results yet.</p>", team)
    parts = []
    for phase, fraction, table in groups:
        parts.append(f"<h2>{_e(phase)} phase, labeled fraction {fraction:g}</h2>")
        parts.append(table_html(table, PUBLIC_COLUMNS))
    note = (
        f"<p class='muted'>{_e(READABLE['dice'])}: macro mean over structures; 95% bootstrap interval over "
        "sequences; ranks tie where intervals overlap; p vs leader: paired sign-flip permutation test.</p>"
    )
    return layout("MOSXAV-Bench leaderboard", "".join(parts) + note, team)


def signin_page(message: str = "") -> str:
    warn = f"<p class='failed'>{_e(message)}</p>" if message else ""
    body = (
        f"{warn}<form method='post' action='/signin'><label>Team token <input name='token' type='password' "
        "autocomplete='off' size='60'></label> <button type='submit'>Sign in</button></form>"
    )
    return layout("Sign in", body)


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


def team_page(team: str, jobs: list[Job], scores: dict[int, pd.Series], csrf: str) -> str:
    head = "<tr><th>#</th><th class='l'>Phase</th><th class='l'>File</th><th class='l'>Status</th><th>Submitted</th>"
    head += "<th class='l'>Visibility</th><th class='l'>Problems</th></tr>"
    rows = "".join(_job_row(job, csrf) for job in jobs)
    scored = [job for job in jobs if job.submission_id in scores]
    table = ""
    if scored:
        frame = pd.DataFrame([scores[job.submission_id] for job in scored])
        frame.insert(0, "job", [job.id for job in scored])
        columns = ["job", "method", "labeled_fraction", "dice", "dice_ci", "iou", "hd95", "assd"]
        table = "<h2>Scores</h2>" + table_html(frame, columns)
    body = f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>{table}"
    return layout(f"Team {team}", body or "<p>No submissions yet.</p>", team)


def upload_page(team: str, csrf: str, max_bytes: int) -> str:
    body = f"""
<form id="upload" method="post" action="/api/submissions" enctype="multipart/form-data">
<p><label>Submission (.zip of the folder with submission.yaml) <input type="file" name="file" accept=".zip"
 required></label></p>
<p><label>Phase <select name="phase"><option value="validation">validation</option>
<option value="test" selected>test</option></select></label></p>
<p><button type="submit">Upload</button> <progress id="progress" value="0" max="100" hidden></progress>
<span id="status"></span></p></form>
<p class="muted">Largest upload: {max_bytes // 1024**2} MiB.</p>
<script>
const form = document.getElementById('upload');
form.addEventListener('submit', (event) => {{
  event.preventDefault();
  const bar = document.getElementById('progress'), status = document.getElementById('status');
  const request = new XMLHttpRequest();
  request.open('POST', '/api/submissions');
  request.setRequestHeader('X-CSRF-Token', {csrf!r});
  bar.hidden = false;
  request.upload.onprogress = (e) => {{ if (e.lengthComputable) bar.value = 100 * e.loaded / e.total; }};
  request.onload = () => {{
    const answer = JSON.parse(request.responseText || '{{}}');
    if (request.status === 202) {{ status.textContent = 'queued as #' + answer.id; location.href = '/team'; }}
    else {{ status.textContent = 'refused: ' + (answer.detail || request.status); }}
  }};
  request.send(new FormData(form));
}});
</script>"""
    return layout("Upload a submission", body, team)
