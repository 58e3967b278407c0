"""What routes depend on (FastAPI ``Depends``): the settings, the database, the public board and the
signed-in team.

A request is signed in by ``Authorization: Bearer <token>`` (programs) or by the session cookie set at
sign-in (browsers). A write through a session also needs the session's CSRF token (the
``X-CSRF-Token`` header, or the form's ``csrf`` field, checked by the form's route); a token request
needs none (a cross-site page cannot set that header).

The dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, and those hops were a measurable share of an upload's acknowledgement. The one that reads the
database (the token or session lookup) runs on the event loop too: it is one indexed read on a pooled
connection, and a read never waits for a writer (SQLite's WAL mode; PostgreSQL's MVCC, one round trip
of a fraction of a millisecond: ``bench/serve_load.py`` measures both).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mosxav_leaderboard.service.accounts import Team
from mosxav_leaderboard.service.board_view import PublicBoard
from mosxav_leaderboard.service.database import Database
from mosxav_leaderboard.service.settings import Settings

SESSION_COOKIE = "mxb_session"
bearer = HTTPBearer(auto_error=False, description="the team's API token (mosxav-bench admin add-team)")


@dataclass(frozen=True)
class SignedIn:
    team: Team
    csrf: str | None  # the session's CSRF token; None when signed in by a bearer token
    session: str | None


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.database


async def get_board(request: Request) -> PublicBoard:
    return request.app.state.board


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
BoardDep = Annotated[PublicBoard, Depends(get_board)]


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(401, message, {"WWW-Authenticate": "Bearer"})


async def optional_team(
    request: Request,
    database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> SignedIn | None:
    """The signed-in team, or None; a bad token is a 401 (never silently anonymous)."""
    header = request.headers.get("authorization")
    if header is not None:
        team = database.team_for_token(credentials.credentials) if credentials is not None else None
        if team is None:
            raise _unauthorised("invalid or revoked token")
        return SignedIn(team, None, None)
    cookie = request.cookies.get(SESSION_COOKIE)
    found = database.session(cookie)
    if found is None:
        return None
    team, csrf = found
    return SignedIn(team, csrf, cookie)


async def signed_in(signed: Annotated[SignedIn | None, Depends(optional_team)]) -> SignedIn:
    if signed is None:
        raise _unauthorised("sign in, or send Authorization: Bearer <token>")
    return signed


def check_csrf(signed: SignedIn, sent: str | None) -> None:
    """Session writes carry the session's CSRF token; token writes need none."""
    if signed.csrf is not None and not hmac.compare_digest(sent or "", signed.csrf):
        raise HTTPException(403, "missing or wrong CSRF token")


async def writer(request: Request, signed: Annotated[SignedIn, Depends(signed_in)]) -> SignedIn:
    """A team allowed to write through the API (the CSRF header checked for sessions)."""
    check_csrf(signed, request.headers.get("x-csrf-token"))
    return signed


OptionalTeam = Annotated[SignedIn | None, Depends(optional_team)]
SignedInDep = Annotated[SignedIn, Depends(signed_in)]
WriterDep = Annotated[SignedIn, Depends(writer)]
