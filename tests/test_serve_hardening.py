"""The service against the faults and abuse found in review (issue 26), each through HTTP against a
live `mosxav-bench serve` on 127.0.0.1. Bounded in count and time."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from live_server import start_server, upload, wait_for  # noqa: E402
from test_leaderboard import make_submission  # noqa: E402
from test_submission_meta import ALIAS_BOMB  # noqa: E402

from mosxav_leaderboard.service import client  # noqa: E402
from mosxav_leaderboard.service.database import Database  # noqa: E402


def zipped(tiny_root: Path, tmp_path: Path, name: str, **kw) -> bytes:
    folder = make_submission(tiny_root, tmp_path / name, **kw)
    return client.zip_folder(folder, tmp_path / f"{name}.zip").read_bytes()


def public_rows(server) -> list[dict]:
    groups = httpx.get(server.url + "/api/leaderboard").json()["groups"]
    return [row | {"_group": (g["phase"], g["labeled_fraction"])} for g in groups for row in g["rows"]]


@pytest.mark.slow
def test_a_yaml_alias_bomb_is_refused_and_pages_stay_fast(server, tiny_root, tmp_path):
    token = server.team("bomber")
    folder = make_submission(tiny_root, tmp_path / "bomb")
    (folder / "submission.yaml").write_text(ALIAS_BOMB)
    job = upload(server, token, client.zip_folder(folder, tmp_path / "bomb.zip").read_bytes()).json()["id"]
    done = wait_for(server, token, job)
    assert done["status"] == "failed" and "aliases" in done["problems"][0]["message"]
    [(largest,)] = server.rows("SELECT MAX(LENGTH(meta_json)) FROM submissions")
    assert largest is None or largest < 20_000  # nothing expanded was stored
    started = time.perf_counter()
    for path in ("/", "/api/leaderboard"):
        assert httpx.get(server.url + path).status_code == 200
    assert time.perf_counter() - started < 2


@pytest.mark.slow
def test_team_on_every_row_names_normalised_and_one_row_per_team(server, tiny_root, tmp_path):
    token = server.team("rowteam")
    good = upload(server, token, zipped(tiny_root, tmp_path, "a", method="mine-a")).json()["id"]
    worse = upload(
        server, token, zipped(tiny_root, tmp_path, "b", method="mine-b", damage=lambda n, s, m: m * 0)
    ).json()["id"]
    rtl = upload(server, token, zipped(tiny_root, tmp_path, "c", method="evil\u202eeman")).json()["id"]
    huge = upload(server, token, zipped(tiny_root, tmp_path, "d", method="x" * 1000)).json()["id"]
    for job in (good, worse):
        assert wait_for(server, token, job)["status"] == "scored"
        assert client.publish(server.url, token, job)["published"]
    for job, needle in ((rtl, "U+202E"), (huge, "at most 64")):
        done = wait_for(server, token, job)
        assert done["status"] == "failed" and needle in done["problems"][0]["message"], done
    mine = [row for row in public_rows(server) if row["team"] == "rowteam"]
    assert [row["id"] for row in mine] == [str(good)]  # its best of the two published in that group
    page = httpx.get(server.url + "/").text
    assert "<bdi>rowteam</bdi>" in page and "Team" in page and "Seeds" in page and "Dice: vessel" in page
    assert httpx.get(server.url + "/api/teams/me", headers={"Authorization": f"Bearer {token}"}).json()[
        "left_today"
    ] == {"validation": 20, "test": 3}  # the two failed ones do not count


def test_a_fraction_that_is_not_the_benchmarks_makes_no_group(server, tiny_root, tmp_path):
    token = server.team("fraction")
    job = upload(server, token, zipped(tiny_root, tmp_path, "f", meta={"labeled_fraction": 0.2500001})).json()["id"]
    done = wait_for(server, token, job)
    assert done["status"] == "failed" and "not one of the benchmark's" in done["problems"][0]["message"]
    assert {row["_group"][1] for row in public_rows(server)} <= {0.0, 0.05, 0.1, 0.25, 1.0}


def test_duplicates_are_a_team_matter(server, tiny_root, tmp_path):
    first, second = server.team("dup-one"), server.team("dup-two")
    body = zipped(tiny_root, tmp_path, "same", method="same", damage=lambda n, s, m: m * (int(s) % 3 != 1))
    one = upload(server, first, body).json()["id"]
    assert wait_for(server, first, one)["status"] == "scored"
    two = upload(server, second, body).json()["id"]
    assert wait_for(server, second, two)["status"] == "scored"  # another team's upload is not revealed
    again = upload(server, first, body).json()["id"]
    done = wait_for(server, first, again)
    assert done["status"] == "failed" and f"as #{one}" in done["problems"][0]["message"]


@pytest.mark.slow
def test_hiding_takes_the_id_the_pages_show(server, tiny_root, tmp_path):
    token, bystander = server.team("hide-me"), server.team("bystander")
    jobs = []
    for who, name in ((bystander, "by"), (token, "me")):
        job = upload(server, who, zipped(tiny_root, tmp_path, name, method=name, damage=_drop(name))).json()["id"]
        assert wait_for(server, who, job)["status"] == "scored"
        client.publish(server.url, who, job)
        jobs.append(job)
    hide = subprocess.run(
        [sys.executable, "-m", "mosxav_leaderboard.command_line", "admin", "--db", str(server.db), "hide"]
        + [str(jobs[1]), "--reason", "test"],
        capture_output=True,
        text=True,
    )
    assert hide.returncode == 0, hide.stderr
    shown = {row["id"] for row in public_rows(server)}
    assert str(jobs[1]) not in shown and str(jobs[0]) in shown


def _drop(name: str):
    def damage(seq, stem, mask):
        return mask * (int(stem) % 4 != len(name) % 4)

    return damage


@pytest.mark.parametrize(
    "case", ["int64", "boundary", "member-name", "headers", "docs", "openapi", "static", "limit-zero"]
)
def test_small_hostile_inputs_get_a_clear_4xx(server, tmp_path, perfect_zip, case):
    token = server.team(f"small-{case}")
    auth = {"Authorization": f"Bearer {token}"}
    if case == "int64":
        for path in ("/api/submissions/99999999999999999999", "/api/submissions/0"):
            answer = httpx.get(server.url + path)
            assert answer.status_code == 422, answer.text
    elif case == "boundary":
        answer = httpx.post(
            server.url + "/api/submissions",
            headers=auth | {"Content-Type": "multipart/form-data; boundary=" + "b" * 257},
            content=b"--" + b"b" * 257 + b"\r\n",
        )
        assert answer.status_code == 400 and "boundary" in answer.json()["detail"]
    elif case == "member-name":
        archive = tmp_path / "long.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("submission.yaml", "x")
            zf.writestr("p/" + "n" * 300 + ".png", b"x")
        answer = upload(server, token, archive.read_bytes())
        assert answer.status_code == 400 and "too long" in answer.json()["detail"]
    elif case == "headers":
        answer = httpx.get(server.url + "/")
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"
        assert "<script>" not in answer.text and "cdn" not in answer.text.lower()
    elif case == "docs":
        assert httpx.get(server.url + "/docs").status_code == 404
    elif case == "openapi":
        spec = httpx.get(server.url + "/openapi.json").json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        post = spec["paths"]["/api/submissions"]["post"]
        assert {"401", "413", "415", "429"} <= set(post["responses"]) and post["security"]
    elif case == "static":
        assert httpx.get(server.url + "/static/board.js").headers["content-type"].startswith("text/javascript")
        assert httpx.get(server.url + "/static/../leaderboard.sqlite").status_code == 404
    else:
        Database(server.db).set_limit(f"small-{case}", "test", 0)
        answer = upload(server, token, perfect_zip.read_bytes())
        assert answer.status_code == 403 and "limit set to 0" in answer.json()["detail"]
    assert "Traceback" not in server.log.read_text()


def test_429_says_when_to_retry(server, perfect_zip):
    token = server.team("retry", {"test": 1})
    assert upload(server, token, perfect_zip.read_bytes()).status_code == 202
    answer = upload(server, token, perfect_zip.read_bytes())
    assert answer.status_code == 429 and 0 < int(answer.headers["retry-after"]) <= 86_401


def test_a_client_going_away_mid_upload_leaves_nothing(server, perfect_zip):
    token = server.team("gone")
    body = perfect_zip.read_bytes()
    head = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="s.zip"\r\n'
        b"Content-Type: application/zip\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as raw:
        request = (
            f"POST /api/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {len(head) + len(body) + 100}\r\n\r\n"
        ).encode()
        raw.sendall(request + head + body[: len(body) // 2])
    time.sleep(1.0)
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert "Traceback" not in server.log.read_text()
    leftovers = [p for p in server.uploads.rglob("*") if p.is_file() and p.name in ("body", "upload.part")]
    assert leftovers == []


def test_uploads_are_removed_once_scored(server, tiny_root, tmp_path):
    token = server.team("tidy")
    job = upload(server, token, zipped(tiny_root, tmp_path, "t", damage=_drop("tidy!"))).json()["id"]
    assert wait_for(server, token, job)["status"] == "scored"
    upload_path = Database(server.db).job(job).upload
    assert not (server.uploads / upload_path).exists() and (server.uploads / upload_path).parent.parent.is_dir()


@pytest.mark.slow
def test_sign_out_ends_the_session_behind_an_https_proxy(tiny_root, tmp_path):
    running = start_server(tmp_path / "proxy", tiny_root, workers=0, extra=("--public-url", "https://lb.example.org"))
    try:
        token = running.team("proxied")
        forwarded = {"Origin": "https://lb.example.org", "X-Forwarded-Proto": "https"}
        signed = httpx.post(running.url + "/signin", data={"token": token}, headers=forwarded)
        assert signed.status_code == 303, signed.text
        assert "secure" in signed.headers["set-cookie"].lower()
        cookie = signed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        jar = {"mxb_session": cookie}
        page = httpx.get(running.url + "/team", cookies=jar)
        assert page.status_code == 200 and "sign out" in page.text
        csrf = page.text.split("name='csrf' value='")[1].split("'")[0]
        out = httpx.post(running.url + "/signout", cookies=jar, data={"csrf": csrf}, headers=forwarded)
        assert out.status_code == 303
        assert httpx.get(running.url + "/team", cookies=jar).status_code == 303  # the old cookie is dead
        assert httpx.get(running.url + "/api/teams/me", cookies=jar).status_code == 401
        elsewhere = httpx.post(running.url + "/signin", data={"token": token}, headers={"Origin": running.url})
        assert elsewhere.status_code == 403  # only the public origin may sign in
    finally:
        running.stop()


@pytest.mark.slow
def test_phases_with_dates_refuse_with_the_date(tiny_root, tmp_path, perfect_zip):
    phases = tmp_path / "phases.yaml"
    phases.write_text("test:\n  closes: 2026-01-31T12:00:00\nvalidation:\n  opens: 2999-01-01\n")
    running = start_server(tmp_path / "phased", tiny_root, workers=0, extra=("--phases", str(phases)))
    try:
        token = running.team("late")
        closed = upload(running, token, perfect_zip.read_bytes())
        assert closed.status_code == 403 and "closed on 2026-01-31 12:00 UTC" in closed.json()["detail"]
        early = upload(running, token, perfect_zip.read_bytes(), phase="validation")
        assert early.status_code == 403 and "opens on 2999-01-01" in early.json()["detail"]
        states = {p["name"]: p["state"] for p in httpx.get(running.url + "/api/phases").json()}
        assert states == {"test": "closed", "validation": "upcoming"}
        assert "closed" in httpx.get(running.url + "/").text
    finally:
        running.stop()


def _pids(log: Path, event: str = "worker-start") -> list[int]:
    return [json.loads(line)["pid"] for line in log.read_text().splitlines() if f'"{event}"' in line]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


@pytest.mark.slow
def test_workers_die_with_a_killed_server_and_a_restart_keeps_its_ground_truth(tiny_root, tmp_path, perfect_zip):
    home = tmp_path / "orphans"
    running = start_server(home, tiny_root, workers=2)
    deadline = time.monotonic() + 30
    while len(_pids(running.log)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _pids(running.log)
    assert len(workers) == 2
    running.process.send_signal(signal.SIGKILL)
    running.process.wait(10)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "workers outlived their server"
    database = Database(home / "leaderboard.sqlite")
    database.register_worker("elsewhere-1", "elsewhere", 1, "another-ground-truth")
    refused = subprocess.run(
        [sys.executable, "-m", "mosxav_leaderboard.command_line", "serve", "--gt", str(tiny_root)]
        + ["--db", str(home / "leaderboard.sqlite"), "--data", str(home / "data"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "another ground truth" in refused.stderr + refused.stdout
    database.remove_worker("elsewhere-1")
    running = start_server(home, tiny_root, workers=1)
    try:
        token = running.team("after")
        job = upload(running, token, perfect_zip.read_bytes()).json()["id"]
        assert wait_for(running, token, job)["status"] == "scored"
        record = database.job(job)
        assert record.gt_hash and len(record.gt_hash) == 64
        names = [w["name"] for w in database.live_workers(60)]
        assert len(names) == len(set(names)) >= 1
    finally:
        running.stop()


def test_a_job_whose_workers_keep_dying_fails_after_its_attempts(tiny_root, tmp_path, perfect_zip):
    database = Database(tmp_path / "attempts" / "leaderboard.sqlite")
    team, _ = database.add_team("unlucky")
    job = database.enqueue(team, "test", 5, "x/upload.zip", "x.zip")
    for attempt in range(3):
        claimed = database.claim(f"w{attempt}", lease=-1.0, max_attempts=3)  # the lease runs out at once
        assert claimed is not None and claimed.attempts == attempt + 1
    assert database.claim("w3", lease=60.0, max_attempts=3) is None
    failed = database.job(job)
    assert failed.status == "failed" and "interrupted 3 times" in failed.problems[0]["message"]


@pytest.mark.slow
def test_the_rows_published_when_a_phase_closes_are_final(tiny_root, tmp_path, perfect_zip):
    """After the close a team sees its private-part scores; choosing its published row then would let it
    pick its best private row, so publishing and withdrawing are refused once the phase is closed."""
    home = tmp_path / "final"
    phases = tmp_path / "phases.yaml"
    phases.write_text("test:\n  closes: 2999-01-01T00:00:00Z\n  public_fraction: 0.5\n")
    running = start_server(home, tiny_root, workers=1, extra=("--phases", str(phases)))
    try:
        token = running.team("finalists")
        first = upload(running, token, perfect_zip.read_bytes()).json()["id"]
        assert wait_for(running, token, first)["status"] == "scored"
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{running.url}/api/submissions/{first}/publish", headers=headers).status_code == 200
    finally:
        running.stop()
    phases.write_text("test:\n  closes: 2026-01-01T00:00:00Z\n  public_fraction: 0.5\n")  # the close has passed
    running = start_server(home, tiny_root, workers=0, extra=("--phases", str(phases)))
    try:
        for published in ("false", "true"):
            answer = httpx.post(
                f"{running.url}/api/submissions/{first}/publish", params={"published": published}, headers=headers
            )
            assert answer.status_code == 409 and "final" in answer.json()["detail"], answer.text
        [(shown,)] = running.rows("SELECT published FROM jobs WHERE id = :id", id=first)
        assert shown == 1
    finally:
        running.stop()


@pytest.mark.slow
def test_team_pages_are_private_to_caches_and_offer_only_what_can_be_done(tiny_root, tmp_path):
    """/team and /upload are never stored (no-store); a closed phase has no quota and is not offered;
    the model option is there when the service runs models; a team named "Team X" is not "Team Team X";
    headers and numbers never break mid-word."""
    phases = tmp_path / "phases.yaml"
    phases.write_text("test:\n  closes: 2026-01-01T00:00:00Z\nvalidation:\n  per_day: 7\n")
    running = start_server(
        tmp_path / "pages", tiny_root, workers=0, extra=("--phases", str(phases), "--model-methods", "supervised")
    )
    try:
        token = running.team("Team X")
        jar = httpx.post(running.url + "/signin", data={"token": token}, headers={"Origin": running.url}).cookies
        team = httpx.get(running.url + "/team", cookies=jar)
        form = httpx.get(running.url + "/upload", cookies=jar)
        for page in (team, form):
            assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
            assert "validation: 7 of 7" in page.text and "test:" not in page.text.split("left today")[1][:40]
        assert "<title>Team X: submissions</title>" in team.text and "Team Team X" not in team.text
        assert "<option value='validation'" in form.text and "<option value='test'" not in form.text
        assert "<option value='model'>" in form.text
        assert "the rows" not in form.text or "final" in form.text
        assert "overflow-wrap:anywhere}" not in team.text.split("<style>")[1].split("th{")[0]
        assert "th{background:#f4f4f4;cursor:pointer;user-select:none;white-space:nowrap}" in team.text
    finally:
        running.stop()


def test_a_phases_file_must_say_when_a_phase_closes_and_freeze_inside_it(tmp_path):
    from mosxav.errors import DataError
    from mosxav_leaderboard.service.settings import read_phases

    phases = tmp_path / "phases.yaml"
    phases.write_text("test:\n  closes: 2027-03-31\n")
    with pytest.raises(DataError, match=r"test.closes: 2027-03-31 is a date without a time .* 2027-03-31T23:59:59Z"):
        read_phases(phases)
    phases.write_text("test:\n  closes: 2027-03-31T23:59:00Z\n  freeze: 2027-04-02T00:00:00Z\n")
    with pytest.raises(DataError, match="the freeze must come before the close"):
        read_phases(phases)
    phases.write_text("test:\n  opens: 2027-01-10\n  closes: 2027-03-31T23:59:00Z\n")
    (test,) = [p for p in read_phases(phases) if p.name == "test"]
    assert test.opens.isoformat() == "2027-01-10T00:00:00+00:00"  # an opening may be a bare date


@pytest.mark.slow
def test_a_validation_phase_with_a_private_part_returns_only_public_sequences(tiny_root, tmp_path):
    from mosxav_leaderboard.service import client

    phases = tmp_path / "phases.yaml"
    phases.write_text("validation:\n  public_fraction: 0.5\n")
    running = start_server(tmp_path / "valpart", tiny_root, workers=1, extra=("--phases", str(phases)))
    try:
        token = running.team("val-team")
        folder = make_submission(tiny_root, tmp_path / "val", split="val")
        zipped = client.zip_folder(folder, tmp_path / "val.zip")
        job = upload(running, token, zipped.read_bytes(), phase="validation").json()["id"]
        done = wait_for(running, token, job)
        every = set((tiny_root / "trainval" / "ImageSets" / "val.txt").read_text().split())
        assert done["status"] == "scored" and done["sequences"]
        assert set(done["sequences"]) < every  # the private part's sequences are not returned while it runs
    finally:
        running.stop()


def _seconds_until_closed(connection, byte: bytes, pause: float, limit: float) -> float | None:
    """Send ``byte`` every ``pause`` seconds until the server closes ``connection``: the seconds that took,
    or None if it was still open after ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            connection.sendall(byte)
            connection.settimeout(pause)
            if connection.recv(1) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
    return None


@pytest.mark.slow
def test_slow_request_headers_end_the_connection(tiny_root, tmp_path):
    """A client sending its headers a byte at a time (slowloris) is cut off once HEADER_SECONDS pass,
    while an ordinary request on a fresh connection is answered; a form's body sent as slowly is cut off
    once REQUEST_SECONDS pass."""
    import socket
    from urllib.parse import urlsplit

    from mosxav_leaderboard.service.protocol import HEADER_SECONDS, REQUEST_SECONDS

    running = start_server(tmp_path / "slow", tiny_root, workers=0)
    try:
        address = urlsplit(running.url)
        slow = socket.create_connection((address.hostname, address.port), timeout=5)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        took = _seconds_until_closed(slow, b"X", 1.0, HEADER_SECONDS + 8)  # a header that never ends
        assert took is not None and HEADER_SECONDS - 1 <= took <= HEADER_SECONDS + 8
        assert httpx.get(running.url + "/healthz").status_code == 200
        # a form's body sent a byte every 2 s (it had no deadline: 0 of 100 such connections closed in 45 s)
        slow = socket.create_connection((address.hostname, address.port), timeout=5)
        head = b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        slow.sendall(head + b"Content-Length: 100000\r\n\r\n")
        took = _seconds_until_closed(slow, b"t", 2.0, REQUEST_SECONDS + 10)
        assert took is not None and took <= REQUEST_SECONDS + 10
    finally:
        running.stop()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_nothing_of_a_killed_server_lingers(tiny_root, tmp_path):
    """kill -9 of the server: its workers and multiprocessing's resource tracker are gone within seconds."""
    from processes import descendants

    running = start_server(tmp_path / "lingering", tiny_root, workers=1)
    deadline = time.monotonic() + 30
    while len(descendants(running.process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    helpers = descendants(running.process.pid)
    assert helpers
    os.kill(running.process.pid, signal.SIGKILL)
    running.process.wait()
    deadline = time.monotonic() + 15
    while [pid for pid in helpers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in helpers if _alive(pid)]


@pytest.mark.slow
def test_a_closed_phase_stays_closed_when_its_close_is_edited_later(tiny_root, tmp_path, perfect_zip):
    """Moving a closed phase's close later in the phases file and restarting reopened publishing, with no
    warning, after teams had seen their private scores: now the service refuses to start unless the
    organizer reopens the phase by name (logged). A close written with an offset is held, and shown, in
    UTC (it was reported as 12:00 UTC, 14 hours off)."""
    home = tmp_path / "closed"
    phases = tmp_path / "phases.yaml"
    phases.write_text("test:\n  closes: 2026-01-01T12:00:00+14:00\n  public_fraction: 0.5\n")
    running = start_server(home, tiny_root, workers=0, extra=("--phases", str(phases)))
    try:
        refused = upload(running, running.team("late"), perfect_zip.read_bytes())
        assert refused.status_code == 403 and "closed on 2025-12-31 22:00 UTC" in refused.json()["detail"]
    finally:
        running.stop()
    phases.write_text("test:\n  closes: 2999-01-01T00:00:00Z\n  public_fraction: 0.5\n")
    with pytest.raises(RuntimeError, match="server did not start") as failed:
        start_server(home, tiny_root, workers=0, extra=("--phases", str(phases)))
    said = " ".join(str(failed.value).split())
    assert "the phase closed on 2025-12-31 22:00 UTC" in said and "--reopen test" in said
    running = start_server(home, tiny_root, workers=0, extra=("--phases", str(phases), "--reopen", "test"))
    try:
        token = running.team("reopened")
        assert upload(running, token, perfect_zip.read_bytes()).status_code == 202  # open again, on purpose
        assert '"event": "reopened", "phase": "test"' in running.log.read_text()
    finally:
        running.stop()


def test_a_close_given_as_a_basic_iso_date_is_a_date_without_a_time(tmp_path):
    from mosxav.errors import DataError
    from mosxav_leaderboard.service.settings import read_phases

    phases = tmp_path / "phases.yaml"
    phases.write_text('test:\n  closes: "20270331"\n')
    with pytest.raises(DataError, match="20270331 is a date without a time"):
        read_phases(phases)
    phases.write_text('test:\n  closes: "20270331T235959Z"\n')
    (test,) = [p for p in read_phases(phases) if p.name == "test"]
    assert test.closes.isoformat() == "2027-03-31T23:59:59+00:00"


def test_a_team_name_that_looks_like_an_existing_one_is_refused(tmp_path):
    """`Team С` (Cyrillic Es) beside `Team C` passed the admin command: one team could pass for the other."""
    database = Database(tmp_path / "lb.sqlite")
    database.add_team("Team C")
    for lookalike in ("Team С", "TEAM C", "Τeam C"):  # Cyrillic Es; case; Greek Tau
        with pytest.raises(ValueError, match="looks like the existing team 'Team C'|exists already"):
            database.add_team(lookalike)
    database.add_team("Team D")  # a different name is fine


def test_marks_cannot_be_stacked_past_the_cap_by_interleaving_spacing_marks_or_modifiers():
    """Spacing marks (Mc) and modifier letters (Lm) reset the count of stacked combining marks."""
    from mosxav.submission import MAX_COMBINING_MARKS, MetaProblem, clean_text

    nonspacing, spacing, modifier = "\u0301", "\u0903", "\u02bb"  # a modifier letter NFKC keeps
    for filler in (spacing, modifier):
        piled = "a" + (nonspacing * MAX_COMBINING_MARKS + filler) * 4
        with pytest.raises(MetaProblem, match="stacks more than"):
            clean_text(piled, max_length=100)
    assert clean_text("Zoë Müller", max_length=100) == "Zoë Müller"
