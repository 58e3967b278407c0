"""A phase that has closed stays closed: its close is recorded in the database and a later start with
another ``closes`` is refused, unless the organizer reopens it by name (``serve --reopen PHASE``,
logged).

Teams see their private scores once a phase closes, and publishing or withdrawing is refused from then
on. A phases file edited afterwards (the close moved later, or removed) must not quietly reopen
publishing: the service remembers the close it last ran with for every phase (``service_state``,
``phase_close:<name>``) and, when that close has passed, holds the configured one to it. A close moved
before it passes (a deadline extended) is fine and is simply recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from mosxav.errors import DataError
from mosxav_leaderboard.service.database import Database
from mosxav_leaderboard.service.settings import Phase

log = logging.getLogger("mosxav.serve")
KEY = "phase_close:{}"


class ClosedPhaseMoved(DataError):
    """A phase closed at its recorded time and the phases file now gives it another close."""


def _text(moment: datetime | None) -> str:
    return "none" if moment is None else moment.isoformat()


def hold_closes(database: Database, phases: Iterable[Phase], now: datetime, reopen: Iterable[str] = ()) -> None:
    """Check every phase's configured close against the one recorded, then record the configured ones.

    Raises:
        ClosedPhaseMoved: a phase whose recorded close has passed is configured with another close (or
            none), and was not named in ``reopen``.
    """
    reopen = set(reopen)
    for phase in phases:
        stored = database.state(KEY.format(phase.name))
        recorded = None if stored in (None, "none") else datetime.fromisoformat(stored)
        if recorded is not None and recorded <= now and phase.closes != recorded:
            if phase.name not in reopen:
                raise ClosedPhaseMoved(
                    f"phases file: {phase.name}.closes",
                    f"the phase closed on {recorded:%Y-%m-%d %H:%M} UTC (teams have seen their private scores) "
                    f"and is now configured to close {_text(phase.closes)}: restore its close, or reopen it on "
                    f"purpose with --reopen {phase.name}",
                )
            log.warning(
                f'{{"event": "reopened", "phase": "{phase.name}", "closed": "{recorded.isoformat()}", '
                f'"closes": "{_text(phase.closes)}"}}'
            )
        database.set_state(KEY.format(phase.name), _text(phase.closes))
