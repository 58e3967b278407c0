"""A phase's public/private split of the test sequences: the table ranks on the public part while the
phase runs and on the private part once it closes, recomputed from the stored per-sequence sums."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from test_leaderboard import gt_frames, make_submission

pytest.importorskip("fastapi")

from mosxav_leaderboard.board import build_table, submit  # noqa: E402
from mosxav_leaderboard.service.board_view import PublicBoard  # noqa: E402
from mosxav_leaderboard.service.database import Database  # noqa: E402
from mosxav_leaderboard.service.settings import DEFAULT_PHASES, Settings  # noqa: E402


def test_scores_on_every_sequence_equal_the_stored_ones(tiny_root, tmp_path):
    database = Database(tmp_path / "lb.sqlite")
    damaged = make_submission(tiny_root, tmp_path / "d", damage=lambda n, s, m: m * (int(s) % 3 != 0))
    submit(damaged, tiny_root, database.store)
    _, names = gt_frames(tiny_root)
    stored, _ = build_table(database.store, by_structure=True)
    recomputed, _ = build_table(database.store, by_structure=True, parts={"test": frozenset(names)})
    for column in stored.columns:
        if stored[column].dtype.kind == "f":
            assert recomputed[column].to_numpy() == pytest.approx(stored[column].to_numpy(), nan_ok=True), column


def test_the_public_part_ranks_during_the_phase_and_the_private_part_after(tiny_root, tmp_path):
    _, names = gt_frames(tiny_root)
    assert len(names) >= 2
    test_phase = replace(DEFAULT_PHASES[1], public_fraction=0.5)
    public = test_phase.sequences(names, "public")
    private = test_phase.sequences(names, "private")
    assert public and private and not public & private and public | private == set(names)
    assert test_phase.sequences(names, "public") == public  # a fixed choice
    victim = sorted(private)[0]
    folder = make_submission(tiny_root, tmp_path / "s", damage=lambda n, s, m: m * 0 if n == victim else m)
    database = Database(tmp_path / "lb.sqlite")
    submit(folder, tiny_root, database.store)
    running = Settings(
        gt=tiny_root, db=database.store.path, data=tmp_path / "data", phases=(DEFAULT_PHASES[0], test_phase)
    )
    groups = PublicBoard(database, running).groups()
    assert [g.part for g in groups] == ["public"] and groups[0].rows.iloc[0]["dice"] == pytest.approx(1.0)
    closed = replace(test_phase, closes=datetime.now(timezone.utc) - timedelta(days=1))
    final = PublicBoard(database, replace(running, phases=(DEFAULT_PHASES[0], closed))).groups()
    assert [g.part for g in final] == ["private"] and final[0].rows.iloc[0]["dice"] < 0.99
