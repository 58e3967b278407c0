"""The leaderboard service tested as a server: `mosxav-bench serve` on 127.0.0.1 and a free port, on a
tiny synthetic ground truth, talked to over HTTP (httpx), stopped at the end. Bounded in count and time."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from live_server import distinct_zips, start_server, upload, wait_for  # noqa: E402
from test_leaderboard import _huge_png, _zip_with, make_submission  # noqa: E402

from mosxav_leaderboard.board import build_table, submit  # noqa: E402
from mosxav_leaderboard.service import accounts, client  # noqa: E402
from mosxav_leaderboard.service.database import Database  # noqa: E402
from mosxav_leaderboard.store import Store  # noqa: E402


@pytest.mark.slow
def test_submit_from_the_command_line_scores_like_the_local_submit(server, tiny_root, tmp_path, perfect_zip):
    made = subprocess.run(
        [sys.executable, "-m", "mosxav_leaderboard.command_line", "admin", "--db", str(server.db), "add-team", "cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith(accounts.TOKEN_PREFIX)
    [(stored,)] = server.rows("SELECT token_hash FROM teams WHERE name = 'cli'")
    assert stored == accounts.token_hash(token)
    if server.backend == "sqlite":
        assert token not in Path(server.db).read_bytes().decode("latin-1")
    damaged = make_submission(tiny_root, tmp_path / "sub", method="half", damage=_erase_every_other_vessel)
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "mosxav_leaderboard.command_line", "submit", str(damaged), "--server", server.url]
        + ["--token", token, "--phase", "test", "--wait"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "queued" in run.stdout and "dice" in run.stdout
    job_id = int(re.search(r"submission #(\d+) queued", run.stdout).group(1))
    answer = client.status(server.url, token, job_id)
    assert answer["status"] == "scored" and "sequences" not in answer  # test phase: the aggregate row only
    local = Store(tmp_path / "local.sqlite")
    submit(damaged, tiny_root, local)
    expected = build_table(local)[0].iloc[0]
    for metric in ("dice", "dice_lo", "dice_hi", "iou", "hd95", "assd"):
        assert answer["row"][metric] == pytest.approx(float(expected[metric]), abs=1e-12), metric
    assert time.perf_counter() - started < 180


def _erase_every_other_vessel(name, stem, mask):
    if int(stem) % 2:
        mask = mask.copy()
        mask[mask == 1] = 0
    return mask


def test_validation_phase_returns_per_sequence_scores(server, tiny_root, tmp_path):
    token = server.team("val-team")
    folder = make_submission(tiny_root, tmp_path / "val", split="val")
    zipped = client.zip_folder(folder, tmp_path / "val.zip")
    answer = upload(server, token, zipped.read_bytes(), phase="validation")
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    done = wait_for(server, token, answer.json()["id"])
    assert done["status"] == "scored", done
    assert set(done["sequences"]) == set((tiny_root / "trainval" / "ImageSets" / "val.txt").read_text().split())
    assert all(value == pytest.approx(1.0) for value in done["sequences"].values())


def test_private_until_published_and_404_for_other_teams(server, perfect_zip):
    owner, other = server.team("owner"), server.team("other")
    job = upload(server, owner, perfect_zip.read_bytes()).json()["id"]
    done = wait_for(server, owner, job)
    assert done["status"] == "scored", done
    public = httpx.get(server.url + "/api/leaderboard").json()
    assert job not in [row["id"] for group in public["groups"] for row in group["rows"]]
    for who in (other, None):
        headers = {"Authorization": f"Bearer {who}"} if who else {}
        assert httpx.get(f"{server.url}/api/submissions/{job}", headers=headers).status_code in (404, 401)
    assert (
        httpx.get(f"{server.url}/api/submissions/{job}", headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )
    stolen = httpx.post(f"{server.url}/api/submissions/{job}/publish", headers={"Authorization": f"Bearer {other}"})
    assert stolen.status_code == 404
    assert httpx.post(
        f"{server.url}/api/submissions/{job}/publish", headers={"Authorization": f"Bearer {owner}"}
    ).is_success
    public = httpx.get(server.url + "/api/leaderboard", params={"phase": "test"}).json()
    rows = [row for group in public["groups"] for row in group["rows"]]
    assert done["row"]["id"] in [row["id"] for row in rows]
    assert httpx.get(f"{server.url}/api/submissions/{job}").json()["status"] == "scored"  # now public
    assert "problems" not in httpx.get(f"{server.url}/api/submissions/{job}").json()  # the report stays the team's
    hide = subprocess.run(
        [sys.executable, "-m", "mosxav_leaderboard.command_line", "admin", "--db", str(server.db), "hide"]
        + [str(job), "--reason", "duplicate account"],
        capture_output=True,
        text=True,
    )
    assert hide.returncode == 0, hide.stderr
    public = httpx.get(server.url + "/api/leaderboard").json()
    assert done["row"]["id"] not in [row["id"] for group in public["groups"] for row in group["rows"]]
    assert server.rows("SELECT reason FROM moderation") == [("duplicate account",)]


def test_tokens_missing_forged_or_revoked_answer_401(server, perfect_zip):
    token = server.team("revoked")
    assert upload(server, None, b"x").status_code == 401
    assert upload(server, "mxb_forged", b"x").status_code == 401
    basic = httpx.post(server.url + "/api/submissions", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401 and basic.headers["www-authenticate"] == "Bearer"
    Database(server.db).revoke("revoked")
    assert upload(server, token, perfect_zip.read_bytes()).status_code == 401


def test_no_url_serves_ground_truth_or_predictions(server, tiny_root):
    for path in (
        "/../test/Annotations_Semantic/v00/00000.png",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/submissions/..%2F..%2Fleaderboard.sqlite",
        "/predictions/",
        "/data/uploads/",
        "/leaderboard.sqlite",
        "/secret.key",
        "/api/submissions/1/../../../data",
    ):
        answer = httpx.get(server.url + path)
        assert answer.status_code in (404, 405, 422), (path, answer.status_code)
        assert b"\x89PNG" not in answer.content and b"SQLite" not in answer.content


@pytest.mark.parametrize(
    "case",
    [
        "over-cap-declared",
        "over-cap-chunked",
        "content-type",
        "not-zip",
        "malformed",
        "field",
        "traversal",
        "bomb",
        "phase",
        "no-file",
    ],
)
def test_bad_uploads_are_4xx_with_a_message_and_write_nothing_outside(server, tmp_path, case):
    token = server.team(f"bad-{case}")
    outside = server.home.parent / f"outside-{case}"
    url = server.url + "/api/submissions"
    headers = {"Authorization": f"Bearer {token}"}
    if case == "over-cap-declared":
        answer = upload(server, token, b"\0" * (3 * 1024**2))
        expected = 413
    elif case == "over-cap-chunked":

        def body():
            for _ in range(40):
                yield b"\0" * (128 * 1024)

        answer = httpx.post(url, headers=headers | {"Content-Type": "multipart/form-data; boundary=x"}, content=body())
        expected = 413
    elif case == "content-type":
        answer = httpx.post(url, headers=headers | {"Content-Type": "application/json"}, content=b"{}")
        expected = 415
    elif case == "not-zip":
        answer = upload(server, token, b"just some text")
        expected = 415
    elif case == "malformed":
        answer = httpx.post(
            url, headers=headers | {"Content-Type": "multipart/form-data; boundary=abc"}, content=b"--x"
        )
        expected = 400
    elif case == "field":
        files = {"evil": ("../../x.zip", b"PK", "application/zip")}
        answer = httpx.post(url, headers=headers, files=files)
        expected = 400
    elif case == "traversal":
        archive = _zip_with(tmp_path, "t.zip", {"submission.yaml": "x", f"../../{outside.name}/evil.txt": "pwned"})
        answer = upload(server, token, archive.read_bytes(), name=f"../../{outside.name}/t.zip")
        expected = 400
    elif case == "bomb":
        archive = _zip_with(tmp_path, "b.zip", {"zeros.png": b"\0" * (64 * 1024**2)})
        answer = upload(server, token, archive.read_bytes())
        expected = 400
    elif case == "phase":
        answer = upload(server, token, _zip_with(tmp_path, "p.zip", {"a": "b"}).read_bytes(), phase="final")
        expected = 400
    else:
        answer = httpx.post(url, headers=headers, data={"phase": "test"}, files={"phase2": ("", b"", "text/plain")})
        expected = 400
    assert answer.status_code == expected, (case, answer.status_code, answer.text)
    assert answer.json()["detail"] and "Traceback" not in answer.text
    assert not outside.exists()
    assert list((server.data / "uploads").glob("*/body")) == []  # no raw bodies left behind


def test_image_header_claiming_billions_of_pixels_is_a_reported_problem(server, tiny_root, tmp_path):
    token = server.team("bomb-png")
    folder = make_submission(tiny_root, tmp_path / "sub", method="bomb")
    victim = sorted((folder / "predictions").rglob("*.png"))[0]
    victim.write_bytes(_huge_png())
    job = upload(server, token, client.zip_folder(folder, tmp_path / "bomb.zip").read_bytes()).json()["id"]
    done = wait_for(server, token, job)
    assert done["status"] == "failed"
    messages = [p for p in done["problems"] if "decompression bomb" in p["message"]]
    assert messages and messages[0]["path"].endswith(victim.name) and str(tmp_path) not in str(done["problems"])
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"


def test_concurrent_uploads_respect_the_daily_limit_exactly(server, tiny_root, tmp_path):
    tokens = [server.team(f"busy-{k}", {"test": 5}) for k in range(3)]
    # Thirty distinct submissions: a duplicate fails when scored, and a failed one frees its slot, so
    # identical uploads would let a fast worker admit more than five (as the rules say it should).
    bodies = [z.read_bytes() for z in distinct_zips(make_submission(tiny_root, tmp_path / "sub"), tmp_path, 30)]
    statuses: dict[str, list[int]] = {t: [] for t in tokens}
    lock = threading.Lock()

    def one(token: str, body: bytes) -> None:
        status = upload(server, token, body, timeout=60).status_code
        with lock:
            statuses[token].append(status)

    threads = [
        threading.Thread(target=one, args=(t, bodies[10 * i + k])) for i, t in enumerate(tokens) for k in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for token in tokens:
        assert sorted(statuses[token]) == [202] * 5 + [429] * 5
    per_team = server.rows(
        "SELECT t.name, COUNT(j.id) FROM teams t JOIN jobs j ON j.team_id = t.id WHERE t.name LIKE 'busy-%' "
        "GROUP BY t.name"
    )
    ids = [r[0] for r in server.rows("SELECT id FROM jobs")]
    assert sorted(per_team) == [("busy-0", 5), ("busy-1", 5), ("busy-2", 5)]
    assert len(ids) == len(set(ids)) and Store(server.db).integrity_ok()


def _worker_pids(log: Path) -> dict[str, int]:
    import json

    pids = {}
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"worker-start"' in line:
            record = json.loads(line)
            pids[record["worker"]] = record["pid"]
    return pids


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_replaced_and_the_job_scored_once(tiny_root, tmp_path, perfect_zip):
    server = start_server(tmp_path / "faults", tiny_root, workers=1, lease=2.0)
    try:
        token = server.team("faults")
        job = upload(server, token, perfect_zip.read_bytes()).json()["id"]
        deadline = time.monotonic() + 30
        owner = None
        while time.monotonic() < deadline and owner is None:
            [(status, holder)] = server.rows("SELECT status, lease_owner FROM jobs WHERE id = :id", id=job)
            if status == "scoring":
                owner = holder
            time.sleep(0.01)
        assert owner is not None, "the job was never claimed"
        pid = _worker_pids(server.log)[owner]
        os.kill(pid, signal.SIGSTOP)  # freeze it mid-job, then kill it: no chance to finish
        os.kill(pid, signal.SIGKILL)
        done = wait_for(server, token, job, timeout=60)
        assert done["status"] == "scored" and done["attempts"] == 2
        assert server.rows("SELECT COUNT(*) FROM submissions") == [(1,)]
        assert server.rows("SELECT COUNT(*) FROM scores") == [(1,)]
    finally:
        server.stop()


@pytest.mark.slow
def test_jobs_queued_at_shutdown_are_scored_after_a_restart(tiny_root, tmp_path):
    home = tmp_path / "restart"
    server = start_server(home, tiny_root, workers=0)
    token = server.team("restart")
    ids = []
    for k in range(2):
        folder = make_submission(tiny_root, tmp_path / f"sub{k}", method=f"m{k}", damage=_drop_frame_class(k))
        ids.append(upload(server, token, client.zip_folder(folder, tmp_path / f"{k}.zip").read_bytes()).json()["id"])
    server.stop()
    assert server.process.returncode == 0
    server = start_server(home, tiny_root, workers=1)
    try:
        assert [wait_for(server, token, i)["status"] for i in ids] == ["scored", "scored"]
    finally:
        server.stop()


def _drop_frame_class(k):
    def damage(name, stem, mask):
        if int(stem) == k:
            mask = mask.copy()
            mask[mask == 1] = 0
        return mask

    return damage


def test_openapi_and_health(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/api/submissions", "/api/submissions/{job_id}", "/api/leaderboard", "/healthz"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/api/submissions"]["post"]["requestBody"]["content"]
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    assert '"event": "request"' in server.log.read_text()
    assert '"event": "job"' in server.log.read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed")
def test_browser_sign_in_upload_publish_and_see_the_row(server, tiny_root, tmp_path):
    pytest.importorskip("websockets")
    from cdp_browser import Browser

    token = server.team("browser")
    folder = make_submission(tiny_root, tmp_path / "sub", method="from-the-browser", damage=_drop_frame_class(3))
    zipped = client.zip_folder(folder, tmp_path / "browser.zip")
    browser = Browser(CHROMIUM, tmp_path / "profile")
    try:
        browser.goto(server.url + "/team")  # not signed in: sent to the sign-in form
        browser.wait_until("location.pathname === '/signin'")
        browser.eval(f"document.querySelector('input[name=token]').value = {token!r}")
        browser.eval("document.querySelector('form').submit()")
        browser.wait_until("location.pathname === '/team' && document.body.innerText.includes('browser: submissions')")
        session = [c for c in browser.cookies() if c["name"] == "mxb_session"]
        assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
        browser.goto(server.url + "/upload")
        browser.set_file("input[type=file]", zipped)
        browser.eval("document.querySelector('#upload button').click()")
        browser.wait_until("location.pathname === '/team'")
        deadline = time.monotonic() + 120
        scored = "[...document.querySelectorAll('td')].some(cell => cell.innerText.trim() === 'scored')"
        while not browser.eval(scored) and time.monotonic() < deadline:  # the status cell, not the rules text
            time.sleep(0.5)
            browser.goto(server.url + "/team")
        assert browser.eval("document.body.innerText.includes('from-the-browser')")  # the score row
        assert browser.eval("document.body.innerText.includes('private')")
        browser.eval("document.querySelector('form.inline button').click()")
        browser.wait_until("document.body.innerText.includes('published') && location.pathname === '/team'")
        browser.goto(server.url + "/")
        text = browser.eval("document.body.innerText")
        assert "from-the-browser" in text and "Dice (95% CI)" in text and "test phase, labeled fraction 0.25" in text
    finally:
        browser.close()


def test_form_posts_need_the_csrf_token(server, perfect_zip):
    token = server.team("csrf")
    signed_in = httpx.post(server.url + "/signin", data={"token": token})
    assert signed_in.status_code == 303
    cookie = signed_in.cookies["mxb_session"]
    jar = {"mxb_session": cookie}
    files = {"file": ("s.zip", perfect_zip.read_bytes(), "application/zip")}
    refused = httpx.post(server.url + "/api/submissions", cookies=jar, files=files)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    page = httpx.get(server.url + "/upload", cookies=jar).text
    csrf = re.search(r'data-csrf="([0-9a-f]+)"', page).group(1)
    accepted = httpx.post(server.url + "/api/submissions", cookies=jar, files=files, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 202
    forged = httpx.post(server.url + "/api/submissions", cookies={"mxb_session": "forged-session"}, files=files)
    assert forged.status_code == 401
    elsewhere = httpx.post(server.url + "/signin", data={"token": token}, headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and "mxb_session" not in elsewhere.cookies


@pytest.mark.slow
def test_sigterm_hands_an_in_flight_job_back_and_a_restart_scores_it(tiny_root, tmp_path, perfect_zip):
    home = tmp_path / "term"
    server = start_server(home, tiny_root, workers=1, lease=120.0)
    token = server.team("term")
    job = upload(server, token, perfect_zip.read_bytes()).json()["id"]
    deadline = time.monotonic() + 30
    status = "queued"
    while time.monotonic() < deadline and status == "queued":
        [(status,)] = server.rows("SELECT status FROM jobs WHERE id = :id", id=job)
        time.sleep(0.01)
    server.stop()
    assert server.process.returncode == 0
    [row] = server.rows("SELECT status, lease_owner FROM jobs WHERE id = :id", id=job)
    assert row in (("queued", None), ("scored", None))  # handed back (or finished), never left leased
    server = start_server(home, tiny_root, workers=1)
    try:
        assert wait_for(server, token, job)["status"] == "scored"
        assert server.rows("SELECT COUNT(*) FROM submissions") == [(1,)]
    finally:
        server.stop()


def test_admin_commands_manage_teams_limits_and_rows(tmp_path, capsys):
    from mosxav_leaderboard.command_line import main

    db = str(tmp_path / "lb.sqlite")
    assert main(["admin", "--db", db, "add-team", "gamma"]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["admin", "--db", db, "new-token", "gamma"]) == 0
    second = capsys.readouterr().out.strip().splitlines()[-1]
    database = Database(db)
    assert database.team_for_token(first) is None and database.team_for_token(second)
    assert main(["admin", "--db", db, "set-limit", "gamma", "--phase", "test", "--per-day", "2"]) == 0
    assert database.daily_limit(1, "test", 5) == 2 and database.daily_limit(1, "validation", 20) == 20
    assert main(["admin", "--db", db, "list-teams"]) == 0
    assert "gamma" in capsys.readouterr().out
    assert main(["admin", "--db", db, "revoke", "gamma"]) == 0
    assert database.team_for_token(second) is None
    assert main(["admin", "--db", db, "add-team", "gamma"]) == 2  # exists: one clear error line
    assert main(["admin", "--db", db, "add-team", "../etc"]) == 2
    assert main(["admin", "--db", db, "hide", "99", "--reason", "x"]) == 2  # no such row


def test_the_server_log_has_no_alembic_chatter(server):
    """serve printed about 25 Alembic "setup plugin" lines at every start."""
    log = server.log.read_text(errors="replace")
    assert "setup plugin" not in log and "alembic" not in log.lower()
