"""The ASGI app: JSON API (described by OpenAPI at ``/openapi.json``) and the server-rendered pages.

Writes need ``Authorization: Bearer <token>``, or, in a browser, the session cookie set at sign-in
(HttpOnly, SameSite=Strict, signed with the server's secret and the team's token hash, so rotating or
revoking a token ends its sessions) together with the CSRF token (a hidden form field or the
``X-CSRF-Token`` header, an HMAC of the session). Uploads are streamed to the data folder, checked
cheaply and queued: scoring happens in the worker processes, never in the request path. A private
submission of another team answers 404, exactly like one that does not exist; no route serves files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from mosxav.evaluation.metrics import METRIC_VERSION
from mosxav.evaluation.uncertainty import SequenceSums
from mosxav_leaderboard.board import build_table
from mosxav_leaderboard.service import accounts, jobs, pages
from mosxav_leaderboard.service.uploads import DEFAULT_MAX_BYTES, UploadRefused, parse_multipart, stream_to_disk
from mosxav_leaderboard.store import Store

log = logging.getLogger("mosxav.serve")
SESSION_COOKIE = "mxb_session"
SPLIT_PHASES = {split: phase for phase, split in jobs.PHASE_SPLITS.items()}


@dataclass(frozen=True)
class ServiceConfig:
    db: Path
    gt: Path
    data: Path
    max_upload_bytes: int = DEFAULT_MAX_BYTES
    session_hours: float = 12.0
    secure_cookies: bool = False  # set behind HTTPS


def server_secret(data: Path) -> bytes:
    """The key that signs sessions: made once (mode 0600) in the data folder, kept across restarts."""
    path = data / "secret.key"
    if not path.is_file():
        data.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    return path.read_bytes()


class Sessions:
    """Signed session values ``team.expiry.signature`` and the CSRF token bound to each."""

    def __init__(self, secret: bytes, hours: float) -> None:
        self.secret, self.seconds = secret, hours * 3600

    def _sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()

    def make(self, team_id: int, token_hash: str) -> str:
        body = f"{team_id}.{int(time.time() + self.seconds)}"
        return f"{body}.{self._sign(body + '.' + token_hash)}"

    def team(self, db: Any, value: str | None) -> accounts.Team | None:
        parts = (value or "").split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or int(parts[1]) < time.time():
            return None
        row = db.execute("SELECT token_hash, revoked FROM teams WHERE id = ?", (int(parts[0]),)).fetchone()
        if row is None or row["revoked"]:
            return None
        if not hmac.compare_digest(parts[2], self._sign(f"{parts[0]}.{parts[1]}.{row['token_hash']}")):
            return None
        return accounts.team_by_id(db, int(parts[0]))

    def csrf(self, value: str) -> str:
        return self._sign("csrf." + value)


class RequestLog:
    """Pure ASGI middleware: one JSON log line per request (method, path, status, milliseconds)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), {"code": 500}

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            record = {"event": "request", "method": scope["method"], "path": scope["path"], "status": status["code"]}
            record["ms"] = round(1000 * (time.perf_counter() - started), 1)
            log.info(json.dumps(record))


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the submission folder as .zip"},
                        "phase": {"type": "string", "enum": list(jobs.PHASES), "default": "test"},
                    },
                }
            }
        },
    }
}


def create_app(config: ServiceConfig) -> FastAPI:
    store = Store(config.db)
    with store.reading() as db:
        db.executescript(jobs.SCHEMA)
    sessions = Sessions(server_secret(config.data), config.session_hours)
    app = FastAPI(title="MOSXAV-Bench leaderboard", version=METRIC_VERSION)
    app.add_middleware(RequestLog)

    def authenticate(request: Request, *, unsafe: bool, csrf_form: str | None = None) -> accounts.Team:
        header = request.headers.get("authorization")
        with store.reading() as db:
            if header is not None:
                scheme, _, token = header.partition(" ")
                team = accounts.team_for_token(db, token.strip()) if scheme.lower() == "bearer" else None
                if team is None:
                    raise HTTPException(401, "invalid or revoked token", {"WWW-Authenticate": "Bearer"})
                return team
            cookie = request.cookies.get(SESSION_COOKIE)
            team = sessions.team(db, cookie)
        if team is None:
            raise HTTPException(401, "sign in, or send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
        if unsafe:
            sent = request.headers.get("x-csrf-token") or csrf_form or ""
            if not hmac.compare_digest(sent, sessions.csrf(cookie or "")):
                raise HTTPException(403, "missing or wrong CSRF token")
        return team

    def optional_team(request: Request) -> accounts.Team | None:
        try:
            return authenticate(request, unsafe=False)
        except HTTPException:
            return None

    def public_groups(phase: str | None, fraction: float | None) -> list[tuple[str, float, pd.DataFrame]]:
        with store.reading() as db:
            visible = jobs.public_submission_ids(db)
        table, _ = build_table(store, label_fraction=fraction, only_ids=visible)
        if table.empty:
            return []
        splits = {s["id"]: s["split"] for s in store.submissions()}
        table["phase"] = [SPLIT_PHASES.get(splits[i], splits[i]) for i in table["id"]]
        table["dice_ci"] = [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["dice_lo"], table["dice_hi"], strict=True)]
        if phase is not None:
            table = table[table["phase"] == phase]
        order = {"test": 0, "validation": 1}
        groups = [(p, float(f), g) for (p, f), g in table.groupby(["phase", "labeled_fraction"], sort=False)]
        return sorted(groups, key=lambda g: (order.get(g[0], 2), g[1]))

    def rows_json(table: pd.DataFrame) -> list[dict]:
        return json.loads(table.drop(columns=["phase"], errors="ignore").to_json(orient="records", double_precision=15))

    def job_view(job: jobs.Job, owner: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": job.id,
            "phase": job.phase,
            "status": job.status,
            "created": job.created,
            "updated": job.updated,
            "published": job.published,
        }
        if owner:
            view |= {"filename": job.filename, "attempts": job.attempts, "problems": job.problems}
        if job.status == "scored" and job.submission_id is not None:
            table, _ = build_table(store, only_ids={job.submission_id}, by_structure=True)
            row = rows_json(table)[0] if len(table) else {}
            view["row"] = {k: v for k, v in row.items() if k not in ("rank", "p_vs_leader")}
            if job.phase == "validation":  # ground truth is public here: per-sequence scores are fine
                score = store.scores(METRIC_VERSION).get(job.submission_id)
                if score is not None:
                    sums = SequenceSums.from_json(score.sequences)
                    dice = sums.per_sequence_headline()
                    view["sequences"] = {name: float(d) for name, d in zip(sums.sequences, dice, strict=True)}
        return view

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; the operators have been told"}, status_code=500)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with store.reading() as db:
            queue = jobs.counts(db)
        return {"status": "ok", "metric_version": METRIC_VERSION, "jobs": queue}

    @app.post("/api/submissions", status_code=202, openapi_extra=UPLOAD_BODY)
    async def upload(request: Request) -> dict[str, Any]:
        """Upload a submission (multipart: ``file`` = the folder as .zip, ``phase``); answers with its id."""
        team = await run_in_threadpool(authenticate, request, unsafe=True)
        folder_name = uuid.uuid4().hex
        folder = config.data / "uploads" / folder_name
        folder.mkdir(parents=True)
        body = folder / "body"
        try:
            await stream_to_disk(request.stream(), body, config.max_upload_bytes, request.headers.get("content-length"))
            parsed = await run_in_threadpool(parse_multipart, body, request.headers.get("content-type"), folder)
            if parsed.phase not in jobs.PHASES:
                raise UploadRefused(400, f"phase {parsed.phase!r} is not one of {list(jobs.PHASES)}")
            upload_path = str(parsed.file.relative_to(config.data))
            job_id = await run_in_threadpool(_enqueue, team.id, parsed.phase, upload_path, parsed.filename)
        except UploadRefused as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(exc.status, exc.message) from None
        except jobs.LimitReached as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(429, str(exc)) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            body.unlink(missing_ok=True)
        return {"id": job_id, "status": "queued"}

    def _enqueue(team_id: int, phase: str, upload_path: str, filename: str) -> int:
        with store.transaction() as db:
            return jobs.enqueue(db, team_id, phase, upload_path, filename)

    @app.get("/api/submissions/{job_id}")
    def submission(job_id: int, request: Request) -> dict[str, Any]:
        """A submission's status and, once scored, its row (the problem report to its team if it failed)."""
        team = optional_team(request)
        with store.reading() as db:
            job = jobs.get(db, job_id)
            hidden = jobs.hidden_rows(db)
        owner = job is not None and team is not None and job.team_id == team.id
        public = job is not None and job.published and job.submission_id not in hidden
        if job is None or not (owner or public):
            raise HTTPException(404, f"no submission #{job_id}")
        return job_view(job, owner)

    @app.post("/api/submissions/{job_id}/publish")
    def publish(job_id: int, request: Request, published: bool = True) -> dict[str, Any]:
        """Show (or, with ``published=false``, withdraw) a scored submission on the public table."""
        team = authenticate(request, unsafe=True)
        return _publish(team, job_id, published)

    def _publish(team: accounts.Team, job_id: int, published: bool) -> dict[str, Any]:
        with store.transaction() as db:
            job = jobs.get(db, job_id)
            if job is None or job.team_id != team.id:
                raise HTTPException(404, f"no submission #{job_id}")
            if not jobs.publish(db, job_id, team.id, published):
                raise HTTPException(409, f"submission #{job_id} is {job.status}; only scored ones can be published")
        return {"id": job_id, "published": published}

    @app.get("/api/leaderboard")
    def leaderboard(phase: str | None = None, labeled_fraction: float | None = None) -> dict[str, Any]:
        """The public table: published rows and reference runs, one ranked group per phase and fraction."""
        if phase is not None and phase not in jobs.PHASES:
            raise HTTPException(400, f"phase must be one of {list(jobs.PHASES)}")
        groups = public_groups(phase, labeled_fraction)
        return {
            "metric_version": METRIC_VERSION,
            "groups": [{"phase": p, "labeled_fraction": f, "rows": rows_json(t)} for p, f, t in groups],
        }

    @app.get("/api/teams/me")
    def me(request: Request) -> dict[str, Any]:
        team = authenticate(request, unsafe=False)
        with store.reading() as db:
            own = jobs.for_team(db, team.id)
        return {"team": team.name, "submissions": [job_view(j, True) for j in own]}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> str:
        team = optional_team(request)
        return pages.public_page(public_groups(None, None), team.name if team else None)

    @app.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    def signin_form() -> str:
        return pages.signin_page()

    @app.post("/signin", include_in_schema=False)
    async def signin(request: Request) -> Any:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise HTTPException(403, "sign-in from another site refused")  # login CSRF
        form = await request.form(max_files=0, max_fields=4)
        token = str(form.get("token", ""))
        with store.reading() as db:
            team = accounts.team_for_token(db, token)
        if team is None:
            return HTMLResponse(pages.signin_page("unknown or revoked token"), status_code=401)
        response = RedirectResponse("/team", status_code=303)
        value = sessions.make(team.id, accounts.token_hash(token))
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=int(config.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=config.secure_cookies,
        )
        return response

    @app.post("/signout", include_in_schema=False)
    def signout() -> Any:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    def page_team(request: Request) -> tuple[accounts.Team, str] | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        with store.reading() as db:
            team = sessions.team(db, cookie)
        return None if team is None or cookie is None else (team, sessions.csrf(cookie))

    @app.get("/team", response_class=HTMLResponse, include_in_schema=False)
    def team_page(request: Request) -> Any:
        signed_in = page_team(request)
        if signed_in is None:
            return RedirectResponse("/signin", status_code=303)
        team, csrf = signed_in
        with store.reading() as db:
            own = jobs.for_team(db, team.id)
        ids = {j.submission_id for j in own if j.submission_id is not None}
        table, _ = build_table(store, only_ids=ids) if ids else (pd.DataFrame(), [])
        scores = {}
        for _, row in table.iterrows():
            row = row.copy()
            row["dice_ci"] = f"[{row['dice_lo']:.3f}, {row['dice_hi']:.3f}]"
            scores[int(row["id"])] = row
        return pages.team_page(team.name, own, scores, csrf)

    @app.post("/team/submissions/{job_id}/publish", include_in_schema=False)
    async def publish_form(job_id: int, request: Request) -> Any:
        form = await request.form(max_files=0, max_fields=4)
        team = await run_in_threadpool(authenticate, request, unsafe=True, csrf_form=str(form.get("csrf", "")))
        await run_in_threadpool(_publish, team, job_id, str(form.get("published", "1")) == "1")
        return RedirectResponse("/team", status_code=303)

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_form(request: Request) -> Any:
        signed_in = page_team(request)
        if signed_in is None:
            return RedirectResponse("/signin", status_code=303)
        team, csrf = signed_in
        return pages.upload_page(team.name, csrf, config.max_upload_bytes)

    return app
