"""Made ``leaderboard-2fd3a37.sqlite``: a service database written by the code of commit 2fd3a37 (the
last schema before the Alembic migrations), for the upgrade test in ``tests/test_migrations.py``.

Run at that commit: ``python tests/data/make_legacy_db.py OUT.sqlite``. It holds two teams (one
revoked), a session, a limit, a scored and published job with its submission and score, a failed
job, a queued job, a moderation decision, a worker and the ground-truth fingerprint.
"""

import sys
from pathlib import Path

from mosxav_leaderboard.service.database import Database
from mosxav_leaderboard.store import ScoreRow

path = Path(sys.argv[1])
database = Database(path)
alpha, _ = database.add_team("alpha")
beta, _ = database.add_team("beta")
database.revoke("beta")
database.open_session(alpha, 12)
database.set_limit("alpha", "test", 3)
scored = database.enqueue(alpha, "test", 5, "uploads/0123456789abcdef0123456789abcdef/upload.zip", "a.zip")
failed = database.enqueue(alpha, "validation", 20, "uploads/11111111111111111111111111111111/upload.zip", "b.zip")
database.enqueue(alpha, "test", 5, "uploads/22222222222222222222222222222222/upload.zip", "c.zip")
score = ScoreRow(0, "1.0", "0.1.0", "d" * 64, {"mean": {"dice": 0.5}}, {"seq01": {"dice": [0.5, 1]}})
fields = dict(
    method="legacy-method",
    dataset="test",
    dataset_hash="d" * 64,
    split="test",
    labeled_fraction=0.1,
    prediction_hash="p" * 64,
    predictions_dir="predictions/" + "p" * 64,
    is_reference=False,
    meta={"method": "legacy-method", "labeled_fraction": 0.1},
    score=score,
)
job = database.claim("legacy-worker", 60, 3)
assert job is not None and job.id == scored
assert database.record_result(job, "legacy-worker", "g" * 64, fields, []) == "scored"
job = database.claim("legacy-worker", 60, 3)
assert job is not None and job.id == failed
database.record_result(job, "legacy-worker", "g" * 64, None, [{"path": "x.png", "message": "bad"}])
database.publish(scored, alpha.id, True)
reference = database.store.add_submission(**{**fields, "prediction_hash": "r" * 64, "is_reference": True})
database.moderate(f"ref-{reference}", True, "superseded")
database.register_worker("legacy-worker", "host", 1, "g" * 64)
database.set_state("gt_fingerprint", "g" * 64)
with database.store.reading() as db:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
