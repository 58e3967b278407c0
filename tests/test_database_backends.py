"""The service's guarantees at the database, on SQLite and PostgreSQL alike: concurrent uploads of one
team never pass its daily limit, concurrent workers never claim the same job, and a result enters the
table only under the lease that claimed it."""

from __future__ import annotations

import threading

import pytest

from mosxav_leaderboard.service.database import Database, LimitReached

BACKENDS = ["sqlite", "postgresql"]


def _together(count: int, work) -> list:
    """Run ``work(k)`` for k < count in threads released at the same moment; their results in order."""
    start = threading.Barrier(count)
    results: list = [None] * count

    def one(k: int) -> None:
        start.wait()
        try:
            results[k] = work(k)
        except Exception as exc:  # collected: the caller asserts on it
            results[k] = exc

    threads = [threading.Thread(target=one, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_uploads_of_a_team_stop_exactly_at_its_limit(backend, database_url):
    database = Database(database_url(backend))
    team, _ = database.add_team("busy")
    other, _ = database.add_team("calm")
    results = _together(16, lambda k: database.enqueue(team if k % 2 else other, "test", 3, f"{k}/u.zip", "u.zip"))
    for who in (team, other):
        mine = [r for k, r in enumerate(results) if (k % 2 == 1) == (who is team)]
        assert sum(isinstance(r, int) for r in mine) == 3, mine
        assert sum(isinstance(r, LimitReached) for r in mine) == 5, mine
        assert database.used_today(who.id, "test") == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_workers_never_claim_the_same_job(backend, database_url):
    database = Database(database_url(backend))
    team, _ = database.add_team("many")
    queued = {database.enqueue(team, "test", 100, f"{k}/u.zip", "u.zip") for k in range(6)}
    claims = _together(8, lambda k: database.claim(f"worker-{k}", 60.0, 3))
    taken = [job.id for job in claims if job is not None]
    assert sorted(taken) == sorted(queued) and claims.count(None) == 2  # each job once, two workers idle
    job = next(c for c in claims if c is not None)
    assert database.record_result(job, "not-the-holder", "g" * 64, None, []) == "lost-lease"
    assert database.record_result(job, job.lease_owner, "g" * 64, None, [{"path": ".", "message": "x"}]) == "failed"
    assert database.record_result(job, job.lease_owner, "g" * 64, None, []) == "lost-lease"  # entered once
