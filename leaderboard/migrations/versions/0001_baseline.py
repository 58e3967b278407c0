"""Baseline: the schema of commit 2fd3a37, the last one made without migrations.

Creates what is missing and nothing else, so a SQLite file that code made (a store of ``submit --db``,
or a service database, with or without the two job columns once added in place) is adopted as it
is; on an empty database (PostgreSQL's first start) it creates everything. The store's tables are
append-only and a revision counter is bumped whenever a row the public table may show changes:
both by triggers, written once per dialect.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AUTO = {"sqlite_autoincrement": True}

_REFUSE = "SELECT RAISE(ABORT, 'the leaderboard is append-only')"
_BUMP = "UPDATE board_revision SET n = n + 1"
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {name} {when} BEGIN {body}; END"
    for name, when, body in (
        ("submissions_append_only_u", "BEFORE UPDATE ON submissions", _REFUSE),
        ("submissions_append_only_d", "BEFORE DELETE ON submissions", _REFUSE),
        ("scores_append_only_u", "BEFORE UPDATE ON scores", _REFUSE),
        ("scores_append_only_d", "BEFORE DELETE ON scores", _REFUSE),
        ("board_on_submission", "AFTER INSERT ON submissions", _BUMP),
        ("board_on_score", "AFTER INSERT ON scores", _BUMP),
        ("board_on_moderation", "AFTER INSERT ON moderation", _BUMP),
        ("board_on_job", "AFTER UPDATE OF published, submission_id ON jobs", _BUMP),
        ("board_on_team", "AFTER UPDATE OF name ON teams", _BUMP),
    )
)

POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION leaderboard_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the leaderboard is append-only'; END $$""",
    """CREATE FUNCTION bump_board_revision() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN UPDATE board_revision SET n = n + 1 WHERE id = 1; RETURN NULL; END $$""",
    *(
        f"CREATE TRIGGER {name} {when} FOR EACH {each} EXECUTE FUNCTION {function}()"
        for name, when, each, function in (
            ("submissions_append_only", "BEFORE UPDATE OR DELETE ON submissions", "ROW", "leaderboard_append_only"),
            ("scores_append_only", "BEFORE UPDATE OR DELETE ON scores", "ROW", "leaderboard_append_only"),
            ("board_on_submission", "AFTER INSERT ON submissions", "STATEMENT", "bump_board_revision"),
            ("board_on_score", "AFTER INSERT ON scores", "STATEMENT", "bump_board_revision"),
            ("board_on_moderation", "AFTER INSERT ON moderation", "STATEMENT", "bump_board_revision"),
            ("board_on_job", "AFTER UPDATE OF published, submission_id ON jobs", "STATEMENT", "bump_board_revision"),
            ("board_on_team", "AFTER UPDATE OF name ON teams", "STATEMENT", "bump_board_revision"),
        )
    ),
)


def _tables() -> dict[str, tuple]:
    """Each table of 2fd3a37 as (columns and constraints, options), in an order foreign keys allow."""
    return {
        "submissions": (
            [
                sa.Column("id", Id, primary_key=True, autoincrement=True),
                sa.Column("created", sa.Text, nullable=False),
                sa.Column("method", sa.Text, nullable=False),
                sa.Column("dataset", sa.Text, nullable=False),
                sa.Column("dataset_hash", sa.Text, nullable=False),
                sa.Column("split", sa.Text, nullable=False),
                sa.Column("labeled_fraction", sa.Float, nullable=False),
                sa.Column("prediction_hash", sa.Text, nullable=False),
                sa.Column("predictions_dir", sa.Text, nullable=False),
                sa.Column("is_reference", sa.Integer, nullable=False, server_default="0"),
                sa.Column("meta_json", sa.Text, nullable=False),
                sa.UniqueConstraint("prediction_hash", "dataset_hash"),
            ],
            AUTO,
        ),
        "scores": (
            [
                sa.Column("id", Id, primary_key=True, autoincrement=True),
                sa.Column("submission_id", Id, sa.ForeignKey("submissions.id"), nullable=False),
                sa.Column("created", sa.Text, nullable=False),
                sa.Column("metric_version", sa.Text, nullable=False),
                sa.Column("toolkit_version", sa.Text, nullable=False),
                sa.Column("dataset_hash", sa.Text, nullable=False),
                sa.Column("summary_json", sa.Text, nullable=False),
                sa.Column("sequences_json", sa.Text, nullable=False),
                sa.UniqueConstraint("submission_id", "metric_version"),
            ],
            AUTO,
        ),
        "teams": (
            [
                sa.Column("id", Id, primary_key=True, autoincrement=True),
                sa.Column("name", sa.Text, nullable=False, unique=True),
                sa.Column("token_hash", sa.Text, nullable=False, unique=True),
                sa.Column("created", sa.Text, nullable=False),
                sa.Column("revoked", sa.Integer, nullable=False, server_default="0"),
            ],
            AUTO,
        ),
        "sessions": (
            [
                sa.Column("id_hash", sa.Text, primary_key=True),
                sa.Column("team_id", Id, sa.ForeignKey("teams.id"), nullable=False),
                sa.Column("csrf", sa.Text, nullable=False),
                sa.Column("created", sa.Text, nullable=False),
                sa.Column("expires", sa.Float, nullable=False),
            ],
            {},
        ),
        "limits": (
            [
                sa.Column("team_id", Id, sa.ForeignKey("teams.id"), primary_key=True),
                sa.Column("phase", sa.Text, primary_key=True),
                sa.Column("per_day", sa.Integer, nullable=False),
            ],
            {},
        ),
        "jobs": (
            [
                sa.Column("id", Id, primary_key=True, autoincrement=True),
                sa.Column("team_id", Id, sa.ForeignKey("teams.id"), nullable=False),
                sa.Column("phase", sa.Text, sa.CheckConstraint("phase IN ('validation', 'test')"), nullable=False),
                sa.Column("day", sa.Text, nullable=False),
                sa.Column("created", sa.Text, nullable=False),
                sa.Column("updated", sa.Text, nullable=False),
                sa.Column("upload", sa.Text, nullable=False),
                sa.Column("filename", sa.Text, nullable=False),
                sa.Column(
                    "status",
                    sa.Text,
                    sa.CheckConstraint("status IN ('queued', 'scoring', 'scored', 'failed')"),
                    nullable=False,
                ),
                sa.Column("lease_owner", sa.Text),
                sa.Column("lease_expires", sa.Float),
                sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
                sa.Column("problems_json", sa.Text),
                sa.Column("submission_id", Id, sa.ForeignKey("submissions.id"), unique=True),
                sa.Column("published", sa.Integer, nullable=False, server_default="0"),
                sa.Column("gt_hash", sa.Text),
                sa.Column("scored_by", sa.Text),
            ],
            AUTO,
        ),
        "moderation": (
            [
                sa.Column("id", Id, primary_key=True, autoincrement=True),
                sa.Column("submission_id", Id, sa.ForeignKey("submissions.id"), nullable=False),
                sa.Column("hidden", sa.Integer, nullable=False),
                sa.Column("reason", sa.Text, nullable=False),
                sa.Column("created", sa.Text, nullable=False),
            ],
            AUTO,
        ),
        "workers": (
            [
                sa.Column("name", sa.Text, primary_key=True),
                sa.Column("host", sa.Text, nullable=False),
                sa.Column("pid", sa.Integer, nullable=False),
                sa.Column("gt_hash", sa.Text, nullable=False),
                sa.Column("started", sa.Text, nullable=False),
                sa.Column("beat", sa.Float, nullable=False),
            ],
            {},
        ),
        "service_state": (
            [sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False)],
            {},
        ),
        "board_revision": (
            [
                sa.Column("id", sa.Integer, sa.CheckConstraint("id = 1"), primary_key=True, autoincrement=False),
                sa.Column("n", sa.BigInteger, nullable=False),
            ],
            {},
        ),
    }


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for name, (columns, options) in _tables().items():
        if name not in present:
            op.create_table(name, *columns, **options)
    if "jobs" in present:  # the two columns the first schema added in place
        have = {c["name"] for c in sa.inspect(bind).get_columns("jobs")}
        for column in ("gt_hash", "scored_by"):
            if column not in have:
                op.add_column("jobs", sa.Column(column, sa.Text))
    if "jobs" not in present:
        op.create_index("jobs_by_status", "jobs", ["status", "id"])
        op.create_index("jobs_by_team_day", "jobs", ["team_id", "phase", "day"])
    if "board_revision" not in present:
        op.execute("INSERT INTO board_revision (id, n) VALUES (1, 0)")
    for statement in SQLITE_TRIGGERS if bind.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not removed: drop the database instead")
