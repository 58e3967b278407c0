"""Teams and their API tokens. A token is shown once, when made; only its SHA-256 is stored.

A token is 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256 is enough to make the stored
hash useless to a thief (there is nothing to brute-force); a password hash (bcrypt, scrypt) would only
slow every request. Look-ups compare hashes through the UNIQUE index, never the tokens themselves.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass

from mosxav_leaderboard.store import now

TOKEN_PREFIX = "mxb_"


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    revoked: bool


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_team_name(name: str) -> bool:
    return 1 <= len(name) <= 64 and all(c.isalnum() or c in "-_. " for c in name) and name.strip() == name


def add_team(db: sqlite3.Connection, name: str) -> tuple[Team, str]:
    """A new team and its token (the only time the token exists in clear)."""
    if not valid_team_name(name):
        raise ValueError(f"team name {name!r}: use 1-64 letters, digits, spaces, '-', '_' or '.'")
    token = new_token()
    try:
        cursor = db.execute(
            "INSERT INTO teams (name, token_hash, created) VALUES (?, ?, ?)", (name, token_hash(token), now())
        )
    except sqlite3.IntegrityError:
        raise ValueError(f"team {name!r} exists already") from None
    return Team(int(cursor.lastrowid), name, False), token


def rotate_token(db: sqlite3.Connection, name: str) -> str:
    """Revoke a team's token and give it a new one (the old one answers 401 from now on)."""
    token = new_token()
    cursor = db.execute("UPDATE teams SET token_hash = ?, revoked = 0 WHERE name = ?", (token_hash(token), name))
    if cursor.rowcount == 0:
        raise ValueError(f"no team {name!r}")
    return token


def revoke(db: sqlite3.Connection, name: str) -> None:
    """Revoke a team's token without a new one: the team can no longer write or sign in."""
    if db.execute("UPDATE teams SET revoked = 1 WHERE name = ?", (name,)).rowcount == 0:
        raise ValueError(f"no team {name!r}")


def team_for_token(db: sqlite3.Connection, token: str) -> Team | None:
    row = db.execute("SELECT id, name, revoked FROM teams WHERE token_hash = ?", (token_hash(token),)).fetchone()
    if row is None or row["revoked"]:
        return None
    return Team(int(row["id"]), row["name"], False)


def team_by_id(db: sqlite3.Connection, team_id: int) -> Team | None:
    row = db.execute("SELECT id, name, revoked FROM teams WHERE id = ?", (team_id,)).fetchone()
    return None if row is None else Team(int(row["id"]), row["name"], bool(row["revoked"]))


def list_teams(db: sqlite3.Connection) -> list[dict]:
    rows = db.execute(
        "SELECT t.id, t.name, t.created, t.revoked, "
        "(SELECT COUNT(*) FROM jobs j WHERE j.team_id = t.id) AS submissions FROM teams t ORDER BY t.id"
    ).fetchall()
    return [dict(r) for r in rows]
