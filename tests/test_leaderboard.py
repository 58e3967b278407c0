"""The leaderboard: submissions (valid, invalid, hostile), scoring, storage under concurrency and
kills, re-scoring on a metric change, and the table."""

import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy
from fake_submissions import META, erase_class, gt_frames, make_submission  # noqa: E402,F401

from mosxav.data.files import write_semantic_mask
from mosxav.evaluation.uncertainty import paired_permutation_p, sequence_interval
from mosxav_leaderboard import board
from mosxav_leaderboard.board import build_table, rescore_stale, submit
from mosxav_leaderboard.coco import masks_to_coco
from mosxav_leaderboard.scoring import score_predictions
from mosxav_leaderboard.store import DuplicateSubmission, Store
from mosxav_leaderboard.submission import SubmissionInvalid, prepare


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "board" / "lb.sqlite")


def test_perfect_submission_scores_one_and_is_recorded(tiny_root, tmp_path, store):
    sub = make_submission(tiny_root, tmp_path / "sub")
    sid = submit(sub, tiny_root, store)
    table, stale = build_table(store)
    assert not stale and len(table) == 1
    row = table.iloc[0]
    assert row["id"] == sid and row["dice"] == pytest.approx(1.0) and row["hd95"] == pytest.approx(0.0)
    assert row["dice_lo"] == pytest.approx(1.0) and row["rank"] == 1
    assert (store.path.parent / "predictions").is_dir()


def test_identical_predictions_are_detected_even_repacked(tiny_root, tmp_path, store):
    sub = make_submission(tiny_root, tmp_path / "sub")
    submit(sub, tiny_root, store)
    archive = tmp_path / "again.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sub.rglob("*"):
            if path.is_file():
                zf.write(path, Path("my_submission") / path.relative_to(sub))
    with pytest.raises(DuplicateSubmission, match="#1"):
        submit(archive, tiny_root, store)
    assert len(store.submissions()) == 1


def test_every_problem_is_reported_at_once(tiny_root, tmp_path, store):
    sub = make_submission(
        tiny_root, tmp_path / "sub", meta={"contact": "nobody", "labeled_fraction": 2, "colour": "red"}
    )
    gt_root, names = gt_frames(tiny_root)
    frames = sorted((sub / "predictions" / names[0]).glob("*.png"))
    frames[0].unlink()  # missing
    write_semantic_mask(sub / "predictions" / names[0] / "99999.png", np.zeros((64, 64), np.uint8))  # extra
    write_semantic_mask(frames[1], np.zeros((32, 32), np.uint8))  # wrong size
    bad = np.zeros((64, 64), np.uint8)
    bad[0, 0] = 9
    write_semantic_mask(frames[2], bad)  # id out of range
    frames[3].write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # unreadable
    (sub / "predictions" / "v99").mkdir()
    with pytest.raises(SubmissionInvalid) as info:
        submit(sub, tiny_root, store)
    text = str(info.value)
    for needle in (
        "1 frame(s) missing",
        "extra frame",
        "size 32x32, expected 64x64",
        "ids [9] out of range",
        "unreadable",
        "sequence not in the test split",
        "not an e-mail",
        "'labeled_fraction' 2 is not in [0, 1]",
        "unknown field 'colour'",
    ):
        assert needle in text, needle
    assert len(info.value.problems) >= 9
    assert store.submissions() == []


def test_unsafe_yaml_is_refused(tiny_root, tmp_path, store):
    sub = make_submission(tiny_root, tmp_path / "sub")
    (sub / "submission.yaml").write_text("method: !!python/object/apply:os.system ['touch /tmp/pwned']\n")
    with pytest.raises(SubmissionInvalid, match="submission.yaml"):
        submit(sub, tiny_root, store)


def _zip_with(tmp_path, name, members, symlink=None):
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = 0o120777 << 16
            zf.writestr(info, symlink[1])
    return archive


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "bomb", "members"])
def test_hostile_archives_are_refused_without_writing_outside(tiny_root, tmp_path, store, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    if kind == "traversal":
        archive = _zip_with(tmp_path, "a.zip", {"submission.yaml": "x", f"../../{outside.name}/evil.txt": "pwned"})
    elif kind == "absolute":
        archive = _zip_with(tmp_path, "a.zip", {str(outside / "evil.txt"): "pwned"})
    elif kind == "symlink":
        archive = _zip_with(tmp_path, "a.zip", {"submission.yaml": "x"}, symlink=("link", str(outside)))
    elif kind == "bomb":
        archive = _zip_with(tmp_path, "a.zip", {"zeros.png": b"\0" * (64 * 1024**2)})
    else:
        archive = _zip_with(tmp_path, "a.zip", {f"f{i}.txt": "" for i in range(20_001)})
    import tempfile

    before = set(tmp_path.rglob("*"))
    scratch_before = set(Path(tempfile.gettempdir()).glob("mosxav-submit-*"))
    with pytest.raises(Exception) as info:
        submit(archive, tiny_root, store)
    assert "a.zip" in str(info.value)
    assert list(outside.iterdir()) == []
    new = set(tmp_path.rglob("*")) - before
    assert all(store.path.parent in p.parents for p in new), new  # only the database's own files (WAL) appear
    assert set(Path(tempfile.gettempdir()).glob("mosxav-submit-*")) == scratch_before  # the work folder is gone too
    assert store.submissions() == []


def test_symlinks_inside_a_folder_are_refused(tiny_root, tmp_path, store):
    sub = make_submission(tiny_root, tmp_path / "sub")
    os.symlink("/etc/passwd", sub / "predictions" / "leak.png")
    with pytest.raises(Exception, match="symbolic links"):
        submit(sub, tiny_root, store)


def test_coco_results_round_trip(tiny_root, tmp_path, store):
    gt_root, names = gt_frames(tiny_root)
    sub = make_submission(tiny_root, tmp_path / "sub", damage=erase_class(2, every=2))
    import json

    results = masks_to_coco(sub / "predictions", gt_root, names)
    shutil.rmtree(sub / "predictions")
    (sub / "predictions.json").write_text(json.dumps(results))
    coco_id = submit(sub, tiny_root, store)
    direct = make_submission(tiny_root, tmp_path / "direct", damage=erase_class(2, every=2))
    with pytest.raises(DuplicateSubmission, match=f"#{coco_id}"):  # same label maps either way
        submit(direct, tiny_root, store)
    (sub / "predictions.json").write_text(json.dumps([{"image_id": 10**6, "category_id": 9, "segmentation": {}}]))
    with pytest.raises(SubmissionInvalid, match="image_id"):
        prepare(sub, tiny_root, tmp_path / "w")


def test_interval_and_headline_agree_with_mosxav_metrics(tiny_root, tmp_path):
    sub = make_submission(tiny_root, tmp_path / "sub", damage=erase_class(1, every=3))
    scores = score_predictions(tiny_root, sub / "predictions")
    mean = scores.summary[scores.summary["class"] == "mean"]["dice"].item()
    assert scores.sums.macro("dice", np.ones((1, len(scores.sums.sequences))))[0] == pytest.approx(mean)
    lo, hi = scores.ci["dice"]
    assert lo < mean < hi  # six test sequences: an interval
    # under six sequences the sign-flip test cannot reach 0.05: no interval, and no rank from it
    assert np.isnan(sequence_interval(scores.sums.subset(set(scores.sums.sequences[:5])), "dice")).all()


def test_paired_permutation_test_exact_values():
    assert paired_permutation_p(np.array([1.0, 1.0, 1.0]), np.zeros(3)) == pytest.approx(2 / 8)
    assert paired_permutation_p(np.array([0.5, 0.6]), np.array([0.5, 0.6])) == 1.0
    assert paired_permutation_p(np.array([1.0, -1.0]), np.zeros(2)) == 1.0


def test_ranks_tie_when_intervals_overlap(tiny_root, tmp_path, store):
    submit(make_submission(tiny_root, tmp_path / "a", method="perfect"), tiny_root, store)
    submit(
        make_submission(tiny_root, tmp_path / "b", method="nearly", damage=erase_class(2, every=5)), tiny_root, store
    )
    submit(
        make_submission(tiny_root, tmp_path / "c", method="blind", damage=lambda n, s, m: np.zeros_like(m)),
        tiny_root,
        store,
    )
    table, _ = build_table(store)
    ranks = dict(zip(table["method"], table["rank"], strict=False))
    assert list(table["method"]) == ["perfect", "nearly", "blind"]
    assert ranks["perfect"] == 1 and ranks["blind"] == 3
    lo_hi = table.set_index("method")[["dice_lo", "dice_hi"]]
    assert (ranks["nearly"] == 1) == (lo_hi.loc["nearly", "dice_hi"] >= lo_hi.loc["perfect", "dice_lo"])
    assert np.isnan(table.iloc[0]["p_vs_leader"]) and 0 < table.iloc[2]["p_vs_leader"] <= 1
    only, _ = build_table(store, label_fraction=0.5)
    assert only.empty


def test_metric_change_rescores_instead_of_mixing(tiny_root, tmp_path, store, monkeypatch):
    submit(make_submission(tiny_root, tmp_path / "a"), tiny_root, store)
    monkeypatch.setattr(board, "METRIC_VERSION", "999")
    table, stale = build_table(store)
    assert table.empty and stale == [1]
    assert rescore_stale(store, tiny_root) == [1]
    table, stale = build_table(store)
    assert not stale and table.iloc[0]["metric_version"] == "999"
    assert len(store.scores("999")) == 1 and len(store.scores("1.0")) == 1  # both kept, never mixed


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_storage_is_append_only(tiny_root, tmp_path, backend, database_url):
    store = Store(database_url(backend), tmp_path / "home")
    submit(make_submission(tiny_root, tmp_path / "a"), tiny_root, store)
    for statement in ("UPDATE submissions SET method = 'better'", "DELETE FROM scores"):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"), store.transaction() as db:
            db.exec_driver_sql(statement)
    assert store.integrity_ok() and [s["method"] for s in store.submissions()] == ["perfect"]


@pytest.mark.slow
def test_concurrent_submissions_lose_nothing(tiny_root, tmp_path, store):
    """Six `mosxav-bench submit` processes at once (two with identical predictions)."""
    subs = [
        make_submission(tiny_root, tmp_path / f"s{k}", method=f"m{k}", damage=erase_class(1 + k % 4, every=k + 1))
        for k in range(4)
    ]
    twin = make_submission(tiny_root, tmp_path / "twin", method="twin", damage=erase_class(1, every=2))
    cli = [
        sys.executable,
        "-m",
        "mosxav_leaderboard.command_line",
        "submit",
        "--gt",
        str(tiny_root),
        "--db",
        str(store.path),
    ]
    procs = [
        subprocess.Popen(cli + [str(s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for s in subs + [twin, twin]
    ]
    codes = [p.wait(timeout=300) for p in procs]
    assert sorted(codes) == [0, 0, 0, 0, 0, 3], [p.stderr.read() for p in procs]
    assert sorted(s["method"] for s in store.submissions()) == ["m0", "m1", "m2", "m3", "twin"]
    assert store.integrity_ok() and len(store.scores("1.0")) == 5


KILLER = """
import sys, time
from mosxav_leaderboard.store import Store
store = Store(sys.argv[1])
with store.transaction() as db:
    db.exec_driver_sql("INSERT INTO submissions (created, method, dataset, dataset_hash, split, labeled_fraction, "
               "prediction_hash, predictions_dir, is_reference, meta_json) "
               "VALUES ('t', 'half', 'd', 'h', 'test', 0.1, 'p', 'x', 0, '{}')")
    print("inserted", flush=True)
    time.sleep(60)
"""


def test_a_killed_writer_leaves_nothing_half_written(tiny_root, tmp_path, store):
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(store.path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "inserted"
    proc.kill()
    proc.wait()
    assert store.integrity_ok() and store.submissions() == []
    submit(make_submission(tiny_root, tmp_path / "a"), tiny_root, store)
    assert [s["method"] for s in store.submissions()] == ["perfect"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed")
def test_html_page_renders_sorts_and_filters_in_headless_chromium(tiny_root, tmp_path, store):
    from mosxav_leaderboard.render import to_html

    submit(make_submission(tiny_root, tmp_path / "a", method="perfect"), tiny_root, store)
    submit(
        make_submission(
            tiny_root,
            tmp_path / "b",
            method="blind",
            damage=lambda n, s, m: np.zeros_like(m),
            meta={"labeled_fraction": 0.5, "paper_url": "https://example.org/paper"},
        ),
        tiny_root,
        store,
    )
    submit(make_submission(tiny_root, tmp_path / "c", method="half", damage=erase_class(1, every=2)), tiny_root, store)
    table, _ = build_table(store, by_structure=True)
    page = tmp_path / "board.html"
    page.write_text(to_html(table, "1.0"))
    text = page.read_text()
    assert "<link" not in text and "src=" not in text and "@import" not in text and "url(" not in text  # self-contained
    assert text.count('href="https://example.org/') == 4  # code links of all three, the paper link of one
    chrome = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + str(tmp_path / "profile")]

    def dom(fragment=""):
        out = subprocess.run(
            chrome + ["--dump-dom", page.as_uri() + fragment], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    def visible_methods(html_text):
        import re

        rows = re.findall(
            r'<tr class="[^"]*" data-id="\d+" data-fraction="([^"]+)"( style="display: none;")?>'
            r'.*?<td class="l" data-v="([^"]+)"',
            html_text,
        )
        return [method for _, hidden, method in rows if not hidden]

    assert visible_methods(dom()) == ["perfect", "half", "blind"]  # by labeled fraction, then Dice
    assert visible_methods(dom("#sort=dice:asc")) == ["blind", "half", "perfect"]
    assert visible_methods(dom("#sort=method:asc")) == ["blind", "half", "perfect"]
    assert visible_methods(dom("#sort=dice:desc&fraction=0.25")) == ["perfect", "half"]
    shot = tmp_path / "board.png"
    out = subprocess.run(
        chrome + [f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()], capture_output=True, timeout=120
    )
    assert out.returncode == 0 and shot.stat().st_size > 10_000
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 5  # something was drawn, not a blank page


def _huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming ``width x height`` pixels (Pillow refuses it as a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_image_header_claiming_billions_of_pixels_is_reported_not_a_crash(tiny_root, tmp_path, store):
    sub = make_submission(tiny_root, tmp_path / "sub")
    victim = sorted((sub / "predictions").rglob("*.png"))[0]
    victim.write_bytes(_huge_png())
    with pytest.raises(SubmissionInvalid) as info:
        submit(sub, tiny_root, store)
    problems = [p for p in info.value.problems if "decompression bomb" in p.message]
    assert len(problems) == 1 and str(problems[0].path).endswith(victim.name)


def test_each_predicted_png_is_decoded_once_on_the_way_to_a_score(tiny_root, tmp_path, store, monkeypatch):
    """The pass that checks a prediction's ids and size also hashes and scores it (issue 26)."""
    import mosxav.data.files as files
    import mosxav.evaluation.folder as folder
    from mosxav_leaderboard.board import score_submission
    from mosxav_leaderboard.service import client

    decoded: list[str] = []
    original = files._small_file_bytes

    def counting(path):
        decoded.append(str(path))
        return original(path)

    monkeypatch.setattr(files, "_small_file_bytes", counting)  # every mask read goes through it
    monkeypatch.setattr(folder, "map_sequences", lambda score, jobs, workers=None: map(score, jobs))
    archive = client.zip_folder(make_submission(tiny_root, tmp_path / "sub"), tmp_path / "sub.zip")
    work = tmp_path / "work"
    scored = score_submission(archive, tiny_root, store, work)
    predicted = [p for p in decoded if "/unpacked/" in p]
    gt_root, names = gt_frames(tiny_root)
    frames = sum(len(list((gt_root / n).glob("*.png"))) for n in names)
    assert len(predicted) == len(set(predicted)) == frames
    assert scored.fields["score"].summary["classes"]["mean"]["dice"] == 1.0
    kept = store.path.parent / scored.fields["predictions_dir"]
    assert len(list(kept.rglob("*.png"))) == frames
    assert not list(work.rglob("*.png"))  # moved from the scratch space, not read again to copy


def test_an_oversize_prediction_is_refused_from_its_header(tiny_root, tmp_path):
    """A 16-megapixel prediction for a small frame is refused before a pixel is inflated."""
    sub = make_submission(tiny_root, tmp_path / "sub")
    first = sorted((sub / "predictions").rglob("*.png"))[0]
    write_semantic_mask(first, np.zeros((4096, 4096), np.uint8))
    with pytest.raises(SubmissionInvalid) as caught:
        prepare(sub, tiny_root, tmp_path / "w")
    (problem,) = caught.value.problems
    assert str(problem.path).endswith(first.name) and "too large (at most" in problem.message
    assert first.is_file()  # a submitted folder is never moved or changed


def test_store_engines_are_one_per_process_and_never_cross_a_fork(tmp_path):
    import multiprocessing

    store = Store(tmp_path / "lb.sqlite")
    assert Store(tmp_path / "lb.sqlite").engine is store.engine  # one pool per database and process
    child = multiprocessing.get_context("fork").Process(
        target=_child_uses_its_own_engine, args=(store, id(store.engine))
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0


def _child_uses_its_own_engine(store: Store, parent_engine: int) -> None:
    ok = id(store.engine) != parent_engine and store.submissions() == []
    os._exit(0 if ok else 1)


def test_every_row_says_where_its_numbers_come_from_and_the_table_filters_by_it(tiny_root, tmp_path, store, capsys):
    from mosxav_leaderboard.command_line import main

    submit(make_submission(tiny_root, tmp_path / "team", method="uploaded"), tiny_root, store)
    reference = make_submission(tiny_root, tmp_path / "ref", method="harness", damage=erase_class(1, every=2))
    submit(reference, tiny_root, store, is_reference=True)
    table, _ = build_table(store)
    assert dict(zip(table["method"], table["provenance"], strict=True)) == {
        "uploaded": "predictions",
        "harness": "reference",
    }
    db = str(store.path)
    for fmt in ("md", "csv", "json"):
        assert main(["leaderboard", "--db", db, "--format", fmt]) == 0
        shown = capsys.readouterr().out
        assert "predictions" in shown and "reference" in shown, fmt
    assert main(["leaderboard", "--db", db, "--format", "csv", "--provenance", "reference"]) == 0
    only = capsys.readouterr().out
    assert "harness" in only and "uploaded" not in only


def test_a_local_html_leaderboard_does_not_claim_a_hidden_test_split(tmp_path):
    """A run's own leaderboard is scored on the split the run had: it is nobody's hidden test split."""
    import pandas as pd

    from mosxav_leaderboard.render import to_html

    page = to_html(pd.DataFrame(columns=["id", "method", "labeled_fraction", "dice"]), "1.0")
    assert "hidden" not in page and "each row was scored on" in page
