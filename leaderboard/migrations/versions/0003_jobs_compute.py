"""Jobs record the compute they used, so failures that ran count and the queue can be fair.

* ``jobs.ran``: 1 when the job ran a team's model (its process started), whatever the outcome: such a
  job counts against the team's daily limit even if it failed; a refusal at the door does not.
* ``jobs.compute_seconds``: the CPU seconds the job's model used (0 for uploaded predictions), which the
  queue reads to take teams' jobs in turn, the team that used least today first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE jobs ADD COLUMN ran INTEGER NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE jobs ADD COLUMN compute_seconds FLOAT NOT NULL DEFAULT 0")


def downgrade() -> None:
    raise NotImplementedError("restore the copy taken before upgrading")
