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
    results = _together(
        16, lambda k: database.enqueue(team if k % 2 else other, "test", 3, f"{k}/u.zip", "u.zip", max_queued=99)
    )
    for who in (team, other):
        mine = [r for k, r in enumerate(results) if (k % 2 == 1) == (who is team)]
        assert sum(isinstance(r, int) for r in mine) == 3, mine
        assert sum(isinstance(r, LimitReached) for r in mine) == 5, mine
        assert database.used_today(who.id, "test") == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_workers_never_claim_the_same_job(backend, database_url):
    database = Database(database_url(backend))
    team, _ = database.add_team("many")
    queued = {database.enqueue(team, "test", 100, f"{k}/u.zip", "u.zip", max_queued=99) for k in range(6)}
    claims = _together(8, lambda k: database.claim(f"worker-{k}", 60.0, 3))
    taken = [job.id for job in claims if job is not None]
    assert sorted(taken) == sorted(queued) and claims.count(None) == 2  # each job once, two workers idle
    job = next(c for c in claims if c is not None)
    assert database.record_result(job, "not-the-holder", "g" * 64, None, []) == "lost-lease"
    assert database.record_result(job, job.lease_owner, "g" * 64, None, [{"path": ".", "message": "x"}]) == "failed"
    assert database.record_result(job, job.lease_owner, "g" * 64, None, []) == "lost-lease"  # entered once


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_that_ran_counts_against_the_limit_and_a_refusal_at_the_door_does_not(backend, database_url):
    database = Database(database_url(backend))
    team, _ = database.add_team("modellers")
    for ran in (False, True):
        database.enqueue(team, "test", 5, f"{ran}/u.zip", "u.zip")
        job = database.claim("worker", 60.0, 3)
        problem = [{"path": "model", "message": "used this server's CPU time limit"}]
        assert database.record_result(job, "worker", "g" * 64, None, problem, ran=ran, compute_seconds=900.0 * ran)
    assert database.used_today(team.id, "test") == 1  # the model that ran to its limit, not the refusal


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_team_may_have_only_so_many_jobs_waiting(backend, database_url):
    database = Database(database_url(backend))
    team, _ = database.add_team("eager")
    database.enqueue(team, "test", 10, "a/u.zip", "u.zip", max_queued=2)
    database.enqueue(team, "test", 10, "b/u.zip", "u.zip", max_queued=2)
    with pytest.raises(LimitReached, match="2 of your team's submissions are already waiting"):
        database.enqueue(team, "test", 10, "c/u.zip", "u.zip", max_queued=2)
    job = database.claim("worker", 60.0, 3)
    database.record_result(job, "worker", "g" * 64, None, [{"path": ".", "message": "bad"}])
    database.enqueue(team, "test", 10, "c/u.zip", "u.zip", max_queued=2)  # a slot is free again


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_queue_takes_teams_in_turn_not_oldest_first(backend, database_url):
    """Team A queues three jobs before B and C queue one each: with one worker, B and C do not wait for
    all of A's; and a team that used more CPU today waits behind one that used less."""
    database = Database(database_url(backend))
    a, _ = database.add_team("a")
    b, _ = database.add_team("b")
    c, _ = database.add_team("c")
    for k in range(3):
        database.enqueue(a, "test", 10, f"a{k}/u.zip", "u.zip", max_queued=9)
    database.enqueue(b, "test", 10, "b/u.zip", "u.zip", max_queued=9)
    database.enqueue(c, "test", 10, "c/u.zip", "u.zip", max_queued=9)
    first = database.claim("w1", 60.0, 3)
    assert first.team == "a"
    second = database.claim("w2", 60.0, 3)  # a has a job being scored: another team's job comes next
    assert second.team in ("b", "c")
    database.record_result(first, "w1", "g" * 64, None, [{"path": ".", "message": "x"}], ran=True, compute_seconds=500)
    database.record_result(second, "w2", "g" * 64, None, [{"path": ".", "message": "x"}], ran=True, compute_seconds=5)
    third = database.claim("w1", 60.0, 3)  # nobody is running: the team that used least CPU today first
    assert third.team not in ("a", second.team)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_attempt_killed_with_its_worker_keeps_the_cpu_it_used(backend, database_url):
    """A worker records its model's CPU at each heartbeat: when it is killed mid-job, the attempt's CPU
    seconds (and that the model ran) stay on the job, count against the team's day, and the next
    attempt adds its own to them (the attempt's CPU was never recorded)."""
    database = Database(database_url(backend))
    team, _ = database.add_team("killed")
    database.enqueue(team, "test", 5, "k/u.zip", "u.zip")
    first = database.claim("w1", 60.0, 3)
    assert database.extend_lease(first.id, "w1", -1.0, compute_seconds=42.0, ran=True)  # a heartbeat, then death
    retaken = database.claim("w2", 60.0, 3)  # the lease ran out: another worker takes it
    assert retaken.id == first.id and retaken.compute_seconds == 42.0 and retaken.ran
    assert database.used_today(team.id, "test") == 1
    problem = [{"path": "model", "message": "x"}]
    database.record_result(retaken, "w2", "g" * 64, None, problem, ran=False or retaken.ran, compute_seconds=42.0 + 8.0)
    assert database.job(first.id).compute_seconds == 50.0 and database.used_today(team.id, "test") == 1
