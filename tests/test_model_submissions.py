"""Model submissions: a run cell's model, run by the server, writes the run's own masks and scores the
run's own numbers; hostile models each get a clear problem, nothing in them executes, and the worker
that ran them lives on."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from processes import children, command, wait_gone

from mosxav.harness.model_card import CARD_FILE, MODEL_FOLDER, WEIGHTS_FILE
from mosxav_leaderboard.board import build_table
from mosxav_leaderboard.command_line import main
from mosxav_leaderboard.model_runs import ModelPolicy, predict_submission
from mosxav_leaderboard.store import Store
from mosxav_leaderboard.submission import SubmissionInvalid

ALLOWED = ModelPolicy(methods=("supervised", "cps"), seconds=120.0, memory_bytes=6 * 1024**3)


@pytest.fixture(scope="module")
def run_dir(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``mosxav-bench run`` of two methods, its reference rows in its own leaderboard."""
    home = tmp_path_factory.mktemp("model-run")
    config = {
        "dataset": {"root": str(tiny_root)},
        "size": 32,
        "methods": ["supervised", "cps"],
        "labeled_fractions": [0.25],
        "seeds": [0],
        "model": {"width": 4, "depth": 2},
        "train": {"iterations": 2, "batch_size": 2, "unlabeled_batch_size": 2, "val_every": 2, "log_every": 1},
        "leaderboard_db": str(home / "lb.sqlite"),
    }
    (home / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(home / "run.yaml"), "--out", str(home / "out")]) == 0
    return home


def _cell(run_dir: Path, method: str = "supervised") -> Path:
    return run_dir / "out" / "submissions" / method / "frac0.25" / "noise0" / "seed0"


def _model_only(run_dir: Path, tmp_path: Path, method: str = "supervised") -> Path:
    """The cell as a model submission holds it: metadata, partition and model, no predictions."""
    copy = Path(shutil.copytree(_cell(run_dir, method), tmp_path / "submission"))
    shutil.rmtree(copy / "predictions")
    return copy


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("method", ["supervised", "cps"])
def test_the_server_predicts_exactly_the_masks_the_run_scored(run_dir, tiny_root, tmp_path, method):
    submission = _model_only(run_dir, tmp_path, method)
    made = predict_submission(submission, tiny_root, "test", ALLOWED)
    expected = _pngs(_cell(run_dir, method) / "predictions")
    assert expected and _pngs(made) == expected


def test_safetensors_weights_predict_the_same_masks(run_dir, tiny_root, tmp_path):
    save_file = pytest.importorskip("safetensors.torch").save_file
    submission = _model_only(run_dir, tmp_path)
    save_file(_weights(submission), str(submission / MODEL_FOLDER / "weights.safetensors"))
    (submission / MODEL_FOLDER / WEIGHTS_FILE).unlink()
    card = _card(submission)
    card["weights"] = "weights.safetensors"
    _write_card(submission, card)
    made = predict_submission(submission, tiny_root, "test", ALLOWED)
    assert _pngs(made) == _pngs(_cell(run_dir) / "predictions")
    (submission / MODEL_FOLDER / "weights.safetensors").write_bytes(b"\x10\x00" + b"{" * 14)  # a broken header
    shutil.rmtree(made)
    with pytest.raises(SubmissionInvalid, match="safetensors"):
        predict_submission(submission, tiny_root, "test", ALLOWED)


class Evil:
    """Unpickling this would run a shell command (``weights_only`` must refuse it unread)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _card(submission: Path) -> dict:
    return yaml.safe_load((submission / MODEL_FOLDER / CARD_FILE).read_text())


def _write_card(submission: Path, card: dict) -> None:
    (submission / MODEL_FOLDER / CARD_FILE).write_text(yaml.safe_dump(card))


def _weights(submission: Path) -> dict[str, torch.Tensor]:
    return torch.load(submission / MODEL_FOLDER / WEIGHTS_FILE, weights_only=True)


def _save(submission: Path, state: object) -> None:
    torch.save(state, submission / MODEL_FOLDER / WEIGHTS_FILE)


def _hostile(case: str, submission: Path, tmp_path: Path) -> ModelPolicy:
    """Make ``submission`` hostile in one way; returns the policy it meets."""
    policy = ALLOWED
    state = _weights(submission)
    first = sorted(state)[0]
    if case == "pickle-with-code":
        _save(submission, {"weights": Evil(tmp_path / "pwned")})
    elif case == "wrong-keys":
        _save(submission, {**{k: v for k, v in state.items() if k != first}, "extra.weight": state[first]})
    elif case == "wrong-shape":
        _save(submission, {**state, first: torch.zeros(*state[first].shape, 2)})
    elif case == "nan-weights":
        _save(submission, {**state, first: torch.full_like(state[first], float("nan"))})
    elif case == "oversize":
        policy = ModelPolicy(methods=ALLOWED.methods, weights_bytes=1024)
    elif case == "not-allowed":
        policy = ModelPolicy(methods=("cps",))
    elif case == "option-typo":
        card = _card(submission)
        card["options"]["widht"] = card["options"].pop("width")
        _write_card(submission, card)
    elif case == "too-slow":
        policy = ModelPolicy(methods=ALLOWED.methods, seconds=0.2)  # importing torch alone takes more CPU time
    elif case == "too-large":
        card = _card(submission)
        card["options"]["width"] = 8192  # billions of parameters: far over the memory limit
        _write_card(submission, card)
        policy = ModelPolicy(methods=ALLOWED.methods, memory_bytes=3 * 1024**3)
    elif case == "impossible-options":
        card = _card(submission)
        card["options"]["width"] = -4  # the right type, a value no network can have
        _write_card(submission, card)
    elif case == "card-escapes":
        card = _card(submission)
        card["weights"] = "../../../etc/passwd.pt"
        _write_card(submission, card)
    return policy


HOSTILE = {
    "pickle-with-code": "weights_only",
    "wrong-keys": "missing",
    "wrong-shape": "has shape",
    "nan-weights": "NaN",
    "oversize": "at most",
    "not-allowed": "is not one this server runs",
    "option-typo": "widht",
    "too-slow": "used this server's CPU time limit",
    "too-large": "GiB",
    "card-escapes": "beside the card",
    "impossible-options": "must be positive",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_model_gets_a_clear_problem_and_nothing_runs(run_dir, tiny_root, tmp_path, case):
    submission = _model_only(run_dir, tmp_path)
    policy = _hostile(case, submission, tmp_path)
    with pytest.raises(SubmissionInvalid) as refused:
        predict_submission(submission, tiny_root, "test", policy)
    messages = " | ".join(f"{p.path}: {p.message}" for p in refused.value.problems)
    assert HOSTILE[case] in messages, messages
    assert str(tmp_path) not in messages and str(tiny_root) not in messages  # no server paths
    assert not (tmp_path / "pwned").exists()  # the pickle's command never ran
    assert not any((submission / "predictions").rglob("*.png")) or case in ("too-slow", "too-large")


@pytest.mark.slow
def test_a_model_submitted_to_a_server_scores_the_runs_own_row(run_dir, tiny_root, tmp_path):
    pytest.importorskip("fastapi")
    from live_server import start_server, upload, wait_for

    server = start_server(tmp_path / "serve", tiny_root, workers=1, extra=("--model-methods", "supervised"))
    try:
        token = server.team("modellers")
        cell = _cell(run_dir)
        submitted = subprocess.run(
            [sys.executable, "-m", "mosxav_leaderboard.command_line", "submit", str(cell), "--model"]
            + ["--server", server.url, "--token", token, "--phase", "test", "--wait"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job = int(submitted.stdout.split("submission #")[1].split()[0])
        answer = wait_for(server, token, job)
        reference = build_table(Store(run_dir / "lb.sqlite"))[0]
        expected = reference[reference["method"] == "supervised"].iloc[0]
        for metric in ("dice", "dice_lo", "dice_hi", "iou", "hd95", "assd"):
            assert answer["row"][metric] == pytest.approx(float(expected[metric]), abs=1e-12), metric
        assert answer["row"]["provenance"] == "model"
        [(team_id,)] = server.rows("SELECT id FROM teams WHERE name = 'modellers'")
        [(kept,)] = server.rows("SELECT prediction_hash FROM submissions")
        [ours] = [s for s in Store(run_dir / "lb.sqlite").submissions() if s["method"] == "supervised"]
        assert kept == hashlib.sha256(f"team:{team_id}:{ours['prediction_hash']}".encode()).hexdigest()  # same masks

        card = _card(cell)
        card["options"]["widht"] = card["options"].pop("width")
        broken = Path(shutil.copytree(cell, tmp_path / "broken"))
        _write_card(broken, card)
        from mosxav_leaderboard.service import client

        body = client.zip_folder(broken, tmp_path / "broken.zip", "model").read_bytes()
        failed = upload(server, token, body, kind="model").json()["id"]
        done = wait_for(server, token, failed)
        assert done["status"] == "failed" and "widht" in done["problems"][0]["message"]
        again = upload(server, token, body, kind="predictions")  # the same zip, as predictions: none inside
        assert again.status_code == 202 and wait_for(server, token, again.json()["id"])["status"] == "failed"
        assert server.process.poll() is None and "Traceback" not in server.log.read_text()
    finally:
        server.stop()


def test_a_server_taking_no_models_refuses_them_at_the_door(server, perfect_zip):
    from live_server import upload

    token = server.team("no-models")
    answer = upload(server, token, perfect_zip.read_bytes(), kind="model")
    assert answer.status_code == 403 and "predictions only" in answer.json()["detail"]
    wrong = upload(server, token, perfect_zip.read_bytes(), kind="weights")
    assert wrong.status_code == 400 and "kind" in wrong.json()["detail"]


def _without_images(root: Path) -> Path:
    for folder in list(root.rglob("JPEGImages")):
        shutil.rmtree(folder)
    return root


@pytest.mark.slow
def test_serve_refuses_to_take_models_without_the_frames_to_run_them_on(tiny_copy, tmp_path):
    _without_images(tiny_copy)
    refused = subprocess.run(
        [sys.executable, "-m", "mosxav_leaderboard.command_line", "serve", "--gt", str(tiny_copy)]
        + ["--db", str(tmp_path / "lb.sqlite"), "--workers", "0", "--port", "1", "--model-methods", "supervised"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "model submissions need the frames" in refused.stderr + refused.stdout


def test_a_worker_elsewhere_refuses_models_without_the_frames_of_its_copy(tiny_copy, tmp_path):
    from mosxav_leaderboard.model_runs import POLICY_STATE
    from mosxav_leaderboard.service.database import Database, fingerprint
    from mosxav_leaderboard.service.settings import Settings
    from mosxav_leaderboard.service.worker import GT_STATE, ground_truth_hashes, run_worker

    settings = Settings(gt=tiny_copy, db=tmp_path / "lb.sqlite", data=tmp_path / "data", workers=0)
    database = Database(settings.db)
    database.set_state(GT_STATE, fingerprint(ground_truth_hashes(settings)))  # the masks are the server's
    database.set_state(POLICY_STATE, ModelPolicy(methods=("supervised",)).to_json())
    _without_images(tiny_copy)
    with pytest.raises(ValueError, match="model submissions need the frames"):
        run_worker(settings, once=True)
    database.set_state(POLICY_STATE, ModelPolicy().to_json())  # a service taking predictions only
    assert run_worker(settings, once=True) == "idle"


# -- the model's process under its own limits -------------------------------------------------------


def _slow(run_dir: Path, tmp_path: Path) -> Path:
    """The tiny supervised cell run at 1024 px: the same weights, many seconds of CPU for the test split."""
    submission = _model_only(run_dir, tmp_path)
    card = _card(submission)
    card["size"] = 1024
    _write_card(submission, card)
    return submission


def _as_worker(submission: str, gt: str, policy: ModelPolicy, results) -> None:
    """A scoring worker's call, in a process of its own (so the test can kill or freeze it)."""
    try:
        predict_submission(Path(submission), Path(gt), "test", policy)
        results.put("ok")
    except SubmissionInvalid as exc:
        results.put(" | ".join(p.message for p in exc.problems))


def _start_worker(submission: Path, gt: Path, policy: ModelPolicy):
    import multiprocessing
    import time

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    worker = context.Process(target=_as_worker, args=(str(submission), str(gt), policy, results))
    worker.start()
    deadline = time.monotonic() + 60
    model = []
    while not model and time.monotonic() < deadline:
        model = [pid for pid in children(worker.pid) if "resource_tracker" not in command(pid)]
        time.sleep(0.2)
    assert model, "the model's process never started"
    return worker, model[0], results


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_the_models_process_dies_with_its_worker(run_dir, tiny_root, tmp_path):
    import signal

    worker, model, _ = _start_worker(_slow(run_dir, tmp_path), tiny_root, ALLOWED)
    os.kill(worker.pid, signal.SIGKILL)  # the worker is killed mid-job (its machine, the OOM killer, an operator)
    worker.join()
    assert not wait_gone([model], 10), command(model)  # and its model does not run on without it


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_the_models_process_keeps_its_own_limits_while_its_worker_is_frozen(run_dir, tiny_root, tmp_path):
    import signal

    policy = ModelPolicy(methods=ALLOWED.methods, seconds=3.0, memory_bytes=ALLOWED.memory_bytes)
    worker, model, results = _start_worker(_slow(run_dir, tmp_path), tiny_root, policy)
    os.kill(worker.pid, signal.SIGSTOP)  # a worker that cannot act: the limits must hold without it
    try:
        assert not wait_gone([model], 60), command(model)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    assert "used this server's CPU time limit of 3 s" in results.get(timeout=60)
    worker.join(30)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_a_model_starved_by_other_load_is_judged_by_the_cpu_time_it_used(run_dir, tiny_root, tmp_path):
    """The model's process is stopped for longer than its limit (as another process hogging the cores
    would starve it): it used little CPU time, so it passes; a wall-clock limit would have failed it."""
    import signal
    import time

    policy = ModelPolicy(methods=ALLOWED.methods, seconds=10.0, memory_bytes=ALLOWED.memory_bytes)
    worker, model, results = _start_worker(_model_only(run_dir, tmp_path), tiny_root, policy)
    os.kill(model, signal.SIGSTOP)
    time.sleep(12)
    os.kill(model, signal.SIGCONT)
    assert results.get(timeout=120) == "ok"
    worker.join(30)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_a_model_process_killed_with_its_worker_during_its_start_dies_at_once(run_dir, tiny_root, tmp_path):
    """The worker is killed the moment its model's process appears, while that process still starts
    (importing torch): the death signal and the limits were set between fork and exec, so it goes with
    its worker at once (set after the imports, it ran on for a second on a quiet machine, 26 s under load)."""
    import multiprocessing
    import signal
    import time

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    worker = context.Process(target=_as_worker, args=(str(_slow(run_dir, tmp_path)), str(tiny_root), ALLOWED, results))
    worker.start()
    deadline = time.monotonic() + 60
    model = []
    while not model and time.monotonic() < deadline:
        model = [pid for pid in children(worker.pid) if "model_child" in command(pid)]
        time.sleep(0.005)
    assert model, "the model's process never started"
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    assert not wait_gone(model, 0.5), command(model[0])


@pytest.mark.slow
def test_a_model_refused_before_it_runs_costs_no_slot_and_one_that_runs_counts_its_cpu(run_dir, tiny_root, tmp_path):
    """Weights refused unread (a pickle carrying code) never ran: the job is a refusal, as at the door.
    A model that runs reports it, with the CPU seconds it used."""
    from mosxav_leaderboard.model_runs import ModelUsage

    refused = _model_only(run_dir, tmp_path / "refused")
    _hostile("pickle-with-code", refused, tmp_path)
    usage = ModelUsage()
    with pytest.raises(SubmissionInvalid, match="weights_only"):
        predict_submission(refused, tiny_root, "test", ALLOWED, usage=usage)
    assert not usage.ran
    usage = ModelUsage()
    predict_submission(_model_only(run_dir, tmp_path / "fine"), tiny_root, "test", ALLOWED, usage=usage)
    assert usage.ran and usage.cpu_seconds > 0.5  # importing torch and predicting take CPU
