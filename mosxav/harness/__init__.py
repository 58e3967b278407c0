"""The experiment harness behind ``mosxav-bench run``: the typed run config, the run matrix, data
sources and the report. Its run folders hold valid leaderboard submissions."""
