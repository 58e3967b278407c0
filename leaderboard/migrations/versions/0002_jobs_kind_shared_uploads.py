"""Jobs know what was submitted and rows where their numbers come from; team names unique
case-insensitively in the database; uploads relative to the shared uploads folder.

* ``jobs.kind``: ``predictions`` (the team's masks) or ``model`` (weights the server runs); every job
  before this revision uploaded predictions.
* ``submissions.provenance``: ``predictions``, ``model`` or ``reference`` (a run of the harness), written
  with the row; earlier rows are reference runs or uploaded predictions (``is_reference`` says which).
  The table is append-only, so its update trigger is lifted for that one statement.
* ``teams_name_folded``: the rule "one team per name, case aside" was checked in the statement that
  adds a team, which two servers on one PostgreSQL could both pass; the index makes it the database's.
* ``jobs.upload``: was relative to the data folder (``uploads/<id>/upload.zip``); it is now relative to
  the uploads folder every worker reads (``--uploads``, by default the data folder's ``uploads/``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'predictions' "
        "CONSTRAINT jobs_kind CHECK (kind IN ('predictions', 'model'))"
    )
    op.execute(
        "ALTER TABLE submissions ADD COLUMN provenance TEXT NOT NULL DEFAULT 'predictions' "
        "CONSTRAINT submissions_provenance CHECK (provenance IN ('predictions', 'model', 'reference'))"
    )
    _backfill_references()
    op.create_index("teams_name_folded", "teams", [sa.text("lower(name)")], unique=True)
    op.execute("UPDATE jobs SET upload = substr(upload, 9) WHERE upload LIKE 'uploads/%'")


def _backfill_references() -> None:
    """Mark the reference runs stored before this revision, past the append-only trigger."""
    backfill = "UPDATE submissions SET provenance = 'reference' WHERE is_reference = 1"
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER submissions_append_only_u")
        op.execute(backfill)
        op.execute(
            "CREATE TRIGGER submissions_append_only_u BEFORE UPDATE ON submissions "
            "BEGIN SELECT RAISE(ABORT, 'the leaderboard is append-only'); END"
        )
    else:
        op.execute("ALTER TABLE submissions DISABLE TRIGGER submissions_append_only")
        op.execute(backfill)
        op.execute("ALTER TABLE submissions ENABLE TRIGGER submissions_append_only")


def downgrade() -> None:
    raise NotImplementedError("SQLite cannot drop a column under a CHECK: restore the copy taken before upgrading")
