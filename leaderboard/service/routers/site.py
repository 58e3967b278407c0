"""The pages a browser sees: the challenge and its table, sign-in and sign-out, a team's page, upload.

Sign-in checks the request's origin against the service's public URL (behind a reverse proxy) or its
own address, so another site cannot sign a visitor into an attacker's team (login CSRF). The session
lives in the database: signing out deletes it, and the cookie stops working at once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mosxav_leaderboard.service import pages
from mosxav_leaderboard.service.dependencies import (
    SESSION_COOKIE,
    BoardDep,
    DatabaseDep,
    OptionalTeam,
    SettingsDep,
    check_csrf,
    signed_in,
)
from mosxav_leaderboard.service.routers.api import PRIVATE, SubmissionId, set_published, team_rows, usage

router = APIRouter(include_in_schema=False)
FORM_LIMITS = {"max_files": 0, "max_fields": 4, "max_part_size": 4096}


def _signed(signed: Any) -> tuple[str, str] | None:
    return None if signed is None or signed.csrf is None else (signed.team.name, signed.csrf)


@router.get("/", response_class=HTMLResponse)
def home(signed: OptionalTeam, settings: SettingsDep, board: BoardDep) -> str:
    return pages.public_page(settings, board.groups(), _signed(signed), datetime.now(timezone.utc))


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in pages.SCRIPTS:
        raise HTTPException(404, "not found")
    return PlainTextResponse(
        pages.SCRIPTS[name], media_type="text/javascript", headers={"Cache-Control": "max-age=300"}
    )


@router.get("/signin", response_class=HTMLResponse)
def signin_form(settings: SettingsDep) -> str:
    return pages.signin_page(settings)


@router.post("/signin")
async def signin(request: Request, settings: SettingsDep, database: DatabaseDep) -> Any:
    origin = request.headers.get("origin")
    own = settings.public_origin or f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise HTTPException(403, "sign-in from another site refused")  # login CSRF
    form = await request.form(**FORM_LIMITS)
    token = str(form.get("token", ""))[:200]
    team = await run_in_threadpool(database.team_for_token, token)
    if team is None:
        return HTMLResponse(pages.signin_page(settings, "unknown or revoked token"), status_code=401)
    value = await run_in_threadpool(database.open_session, team, settings.session_hours)
    response = RedirectResponse("/team", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    return response


@router.post("/signout")
async def signout(request: Request, signed: OptionalTeam, database: DatabaseDep) -> Any:
    form = await request.form(**FORM_LIMITS)
    if signed is not None and signed.session is not None:
        check_csrf(signed, str(form.get("csrf", "")))
        await run_in_threadpool(database.close_session, signed.session)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


#: A signed-in team's pages hold its private scores and a CSRF token: never kept by a cache or a browser.


@router.get("/team", response_class=HTMLResponse)
def team_page(signed: OptionalTeam, settings: SettingsDep, database: DatabaseDep) -> Any:
    if signed is None or signed.csrf is None:
        return RedirectResponse("/signin", status_code=303)
    own = database.jobs_for_team(signed.team.id)
    scores = team_rows(database, settings, own, by_structure=True)
    left = usage(database, settings, signed.team)
    page = pages.team_page(settings, signed.team.name, signed.csrf, own, scores, left)
    return HTMLResponse(page, headers=PRIVATE)


@router.post("/team/submissions/{job_id}/publish")
async def publish_form(
    job_id: SubmissionId, request: Request, signed: OptionalTeam, settings: SettingsDep, database: DatabaseDep
) -> Any:
    form = await request.form(**FORM_LIMITS)
    signed = await signed_in(signed)
    check_csrf(signed, str(form.get("csrf", "")))
    chosen = str(form.get("published", "1")) == "1"
    await run_in_threadpool(set_published, database, settings, signed.team, job_id, chosen)
    return RedirectResponse("/team", status_code=303)


@router.get("/upload", response_class=HTMLResponse)
def upload_form(signed: OptionalTeam, settings: SettingsDep, database: DatabaseDep) -> Any:
    if signed is None or signed.csrf is None:
        return RedirectResponse("/signin", status_code=303)
    left = usage(database, settings, signed.team)
    return HTMLResponse(pages.upload_page(settings, signed.team.name, signed.csrf, left), headers=PRIVATE)
