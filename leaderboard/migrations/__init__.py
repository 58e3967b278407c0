"""Alembic migrations of the leaderboard database (applied by ``mosxav_leaderboard.engine.migrate``)."""
