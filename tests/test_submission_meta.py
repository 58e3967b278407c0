"""The typed ``submission.yaml`` schema: hostile metadata (alias bombs, direction overrides, huge
names) is refused with one problem each, and the labeled fraction is held to the partition."""

from __future__ import annotations

import time

import pytest
import yaml
from test_leaderboard import META, make_submission

from mosxav.data.splits import Partition
from mosxav.submission import SubmissionMeta
from mosxav_leaderboard.submission import SubmissionInvalid, prepare

ALIAS_BOMB = "\n".join(
    ["a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']"]
    + [f"{chr(98 + k)}: &{chr(98 + k)} [{','.join(['*' + chr(97 + k)] * 9)}]" for k in range(8)]
    + ["method: *i"]
)


def test_round_trip_through_the_schema():
    meta, problems = SubmissionMeta.parse(META)
    assert problems == [] and meta is not None
    again, problems = SubmissionMeta.parse(yaml.safe_load(yaml.safe_dump(meta.to_mapping())))
    assert again == meta and meta.seeds == (0,) and meta.authors == ("A. Tester",)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("method", "team-a\u202egnitaerc", "U+202E"),  # right-to-left override: reads as another name
        ("method", "x" * 100_000, "at most 64"),
        ("method", "zero\u200bwidth", "U+200B"),
        ("method", "z" + "\u0301" * 59 + "algo", "combining marks"),  # 59 accents stacked over the rows around
        ("authors", ["A"] * 101, "at most 100"),
        ("contact", "nobody", "not an e-mail address"),
        ("code_url", "javascript:alert(1)", "not an http(s) URL"),
        ("notes", "n" * 2001, "at most 2000"),
        ("seeds", [0, True], "seeds must be integers"),
        ("parameters", -1, "not a parameter count"),
        ("extra_training_data", "no", "expected true or false"),
    ],
)
def test_each_bad_field_is_one_named_problem(field, value, needle):
    meta, problems = SubmissionMeta.parse({**META, field: value})
    assert meta is None and len(problems) == 1
    assert problems[0][0] == field and needle in problems[0][1]


def test_text_is_normalised():
    meta, _ = SubmissionMeta.parse({**META, "method": "  \uff2d\uff34  "})  # full-width "MT"
    assert meta is not None and meta.method == "MT"
    accented, problems = SubmissionMeta.parse({**META, "method": "Nguyễn-Ðặng net"})  # real accents pass
    assert accented is not None and not problems


def test_a_yaml_alias_bomb_is_refused_unexpanded(tiny_root, tmp_path):
    folder = make_submission(tiny_root, tmp_path / "sub")
    (folder / "submission.yaml").write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 600
    started = time.perf_counter()
    with pytest.raises(SubmissionInvalid, match="aliases"):
        prepare(folder, tiny_root, tmp_path / "work")
    assert time.perf_counter() - started < 10


def test_an_oversized_metadata_file_is_refused_unread(tiny_root, tmp_path):
    folder = make_submission(tiny_root, tmp_path / "sub")
    (folder / "submission.yaml").write_text("notes: " + "x" * 70_000)
    with pytest.raises(SubmissionInvalid, match="at most 65536 are read"):
        prepare(folder, tiny_root, tmp_path / "work")


def test_a_fraction_outside_the_benchmarks_is_refused(tiny_root, tmp_path):
    folder = make_submission(tiny_root, tmp_path / "sub", meta={"labeled_fraction": 0.2500001})
    with pytest.raises(SubmissionInvalid) as info:
        prepare(folder, tiny_root, tmp_path / "work", fractions=(0.05, 0.1, 0.25))
    assert "not one of the benchmark's: 0.05, 0.1, 0.25" in str(info.value)
    good = make_submission(tiny_root, tmp_path / "good")
    assert prepare(good, tiny_root, tmp_path / "work2", fractions=(0.05, 0.1, 0.25)).meta.labeled_fraction == 0.25


def test_a_partition_labeling_more_than_its_fraction_is_refused(tiny_root, tmp_path):
    folder = make_submission(tiny_root, tmp_path / "sub")
    partition = Partition.from_yaml(folder / "partition.yaml")
    everything = make_submission(tiny_root, tmp_path / "all", meta={"labeled_fraction": 1.0})
    greedy = Partition.from_yaml(everything / "partition.yaml")
    partition.labeled, partition.count = greedy.labeled, greedy.count  # every frame labeled, 0.25 declared
    partition.to_yaml(folder / "partition.yaml")
    with pytest.raises(SubmissionInvalid) as info:
        prepare(folder, tiny_root, tmp_path / "work")
    assert f"fraction 0.25 of {greedy.count} frames labels" in str(info.value)
    partition.labeled = partition.labeled[:-1] + ["v99/00000"]
    partition.to_yaml(folder / "partition.yaml")
    with pytest.raises(SubmissionInvalid, match="not annotated train frames"):
        prepare(folder, tiny_root, tmp_path / "work3")
