"""Teams and their API tokens. A token is shown once, when made; only its SHA-256 is stored.

A token is 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256 is enough to make the stored
hash useless to a thief (there is nothing to brute-force); a password hash (bcrypt, scrypt) would only
slow every request. Look-ups compare hashes through the UNIQUE index, never the tokens themselves.
Session cookies are handled the same way (``Database.open_session``).
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass

TOKEN_PREFIX = "mxb_"
MAX_TEAM_NAME = 40
#: A team's jobs waiting or being scored at once, at most, by default (``serve --max-queued``).
MAX_QUEUED = 2


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    revoked: bool


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_team_name(name: str) -> str:
    """The team's name as every page shows it: NFKC, 1-40 letters, digits, spaces, '-', '_' or '.'.

    Raises:
        ValueError: any other character (a direction override or an invisible one among them).
    """
    text = unicodedata.normalize("NFKC", name).strip()
    if not 1 <= len(text) <= MAX_TEAM_NAME or not all(c.isalnum() or c in "-_. " for c in text):
        raise ValueError(f"team name {name!r}: use 1-{MAX_TEAM_NAME} letters, digits, spaces, '-', '_' or '.'")
    return text
