"""Where the harness meets the leaderboard: a run folder's clean-label cells entered as reference runs."""

from __future__ import annotations

from pathlib import Path

from mosxav.data.files import write_text
from mosxav.harness.cells import Cell
from mosxav.harness.config import RunConfig
from mosxav.harness.sources import RunData
from mosxav_leaderboard.board import build_table, submit
from mosxav_leaderboard.render import to_markdown
from mosxav_leaderboard.store import DuplicateSubmission, Store

#: The run's own leaderboard, inside its folder, when the config names none.
RUN_LEADERBOARD = "leaderboard.sqlite"


def record_reference_runs(
    run_dir: Path, data: RunData, config: RunConfig, cells: list[Cell], db: Path | None = None
) -> list[int]:
    """Enter the clean-label ``cells`` the run scored (a shard's own, or the whole matrix) into the
    run's leaderboard as reference runs and write the table as it now stands to ``run_dir/leaderboard.md``;
    returns the new submission ids. The run's leaderboard is ``config.leaderboard_db`` when set, else a
    database inside the run folder: a quick run never enters the user's shared table unless asked."""
    store = Store(db or config.leaderboard_db or run_dir / RUN_LEADERBOARD)
    ids = []
    for cell in cells:
        if cell.label_noise > 0:
            continue
        try:
            ids.append(
                submit(run_dir / "submissions" / cell.tag, data.gt_root, store, dataset=data.name, is_reference=True)
            )
        except DuplicateSubmission:
            pass  # the same predictions (e.g. an untrained baseline) are already in the table
    table, _ = build_table(store)
    write_text(run_dir / "leaderboard.md", "# MOSXAV-Bench leaderboard (after this run)\n\n" + to_markdown(table))
    return ids
