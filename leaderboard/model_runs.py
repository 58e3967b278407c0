"""Model submissions: the server predicts a phase's split with a team's trained method, then scores it.

A model submission is a folder (zipped) holding ``submission.yaml`` and its partition, as any
submission, and ``model/`` in place of ``predictions/``: the card (``model.yaml``: the registered
method, its options, the resolution, input transform and test-time options) and the weights file
``mosxav-bench run`` wrote for the cell (``mosxav.harness.model_card``). The scoring worker

1. reads the card through the typed schema (a typo in an option is a problem naming the key) and
   refuses a method off the organizer's allow-list (``ModelPolicy.methods``) or weights over the cap;
2. in a child process that limits itself (address space, CPU time, and a generous wall clock, enforced
   inside the child, so they hold whatever happens to the worker) and dies with the worker that
   started it (``PR_SET_PDEATHSIG``), builds the method from the registry, loads the weights
   (``weights_only``: a pickle carrying code is refused unread; every key and shape must fit, every
   value be finite) and predicts every annotated frame of the split through the harness's own
   prediction path;
3. scores the masks with the same code as uploaded predictions.

A job over its limits fails with a problem saying which, and the worker lives on: only the child
is killed. The time limit is CPU time (one thread), not wall-clock time, so whether a model passes does
not depend on what else the machine runs; the wall clock only bounds a child that waits on nothing.
The organizer's allow-list and limits are written to the database at the server's start
(``service_state``), so workers on other machines follow the same rules.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import math
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mosxav.data.dataset import MOSXAV
from mosxav.data.files import read_untrusted_yaml
from mosxav.errors import DataError, Problem
from mosxav.harness.model_card import CARD_FILE, MODEL_FOLDER, ModelCard
from mosxav.schema import to_mapping
from mosxav_leaderboard.submission import SubmissionInvalid

#: The card is a few hundred bytes; anything much larger is not a card.
MAX_CARD_BYTES = 64 * 1024
POLICY_STATE = "model_policy"
#: prctl's option asking the kernel to signal a process when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: Seconds past the soft CPU limit (SIGXCPU, the child's own message) before the kernel's SIGKILL.
CPU_HARD_MARGIN = 5
#: Seconds the worker waits past the child's wall-clock bound before it kills the child itself.
WALL_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class ModelPolicy:
    """What model submissions a service takes and what one may cost.

    Args:
        methods: the registered methods the server runs (the organizer's allow-list); none: the service
            takes predictions only.
        seconds: CPU time limit of one job's prediction (building, loading, predicting the split, on one
            thread).
        wall_factor: the wall clock it may take, as a multiple of ``seconds`` (a generous bound for a
            child that is starved or stuck, never the limit a normal model meets).
        memory_bytes: address-space limit of the process that predicts.
        weights_bytes: the largest weights file accepted.

    Where a model runs is each worker's own setting (``--model-device``): the policy is the service's.
    """

    methods: tuple[str, ...] = ()
    seconds: float = 900.0
    wall_factor: float = 4.0
    memory_bytes: int = 8 * 1024**3
    weights_bytes: int = 256 * 1024**2

    @property
    def enabled(self) -> bool:
        return bool(self.methods)

    @property
    def wall_seconds(self) -> float:
        """The wall-clock bound: ``wall_factor`` times the CPU limit the kernel enforces (whole seconds)."""
        return max(1, math.ceil(self.seconds)) * self.wall_factor

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> ModelPolicy:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(**{**data, "methods": tuple(data.get("methods", ()))})


@dataclass
class ModelUsage:
    """What a model job cost: whether the model's process ran, and its CPU seconds (for the team's
    daily limit and the fair queue)."""

    ran: bool = False
    cpu_seconds: float = 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_card(root: Path, policy: ModelPolicy) -> tuple[ModelCard | None, list[Problem]]:
    """The submission's card and its weights checked against ``policy`` (every problem collected)."""
    shown = f"{MODEL_FOLDER}/{CARD_FILE}"
    path = root / MODEL_FOLDER / CARD_FILE
    if not path.is_file():
        return None, [Problem(shown, "missing: a model submission needs its card (mosxav-bench run writes it)")]
    problems = []
    if (root / "predictions").exists():
        problems.append(Problem("predictions", "a model submission carries no predictions: the server makes them"))
    try:
        card = ModelCard.read(Path(shown), read_untrusted_yaml(path, "model card", MAX_CARD_BYTES))
    except DataError as exc:
        return None, [*problems, Problem(shown, exc.problem)]
    if card.method not in policy.methods:
        allowed = ", ".join(policy.methods) or "none"
        problems.append(Problem(shown, f"method {card.method!r} is not one this server runs (it runs: {allowed})"))
    weights = path.parent / card.weights
    shown_weights = f"{MODEL_FOLDER}/{card.weights}"
    if not weights.is_file():
        problems.append(Problem(shown_weights, "weights file not found"))
    elif weights.stat().st_size > policy.weights_bytes:
        size, cap = weights.stat().st_size / 1024**2, policy.weights_bytes / 1024**2
        problems.append(Problem(shown_weights, f"{size:.1f} MiB of weights; this server takes at most {cap:.0f} MiB"))
    return card, problems


def missing_frames(gt: Path, splits: list[str]) -> str | None:
    """Why ``gt`` cannot give the frames models run on (the first split it cannot), or None."""
    for split in splits:
        try:
            frames = MOSXAV(gt, split, annotated_only=True)
            if len(frames) == 0:
                return f"no annotated frames in the {split} split"
            frames[0]  # the first frame's image is there and readable
        except (DataError, FileNotFoundError, OSError) as exc:
            return f"the {split} split's frames cannot be read ({exc})"
    return None


def predict_submission(
    root: Path, gt: Path, split: str, policy: ModelPolicy, device: str = "cpu", usage: ModelUsage | None = None
) -> Path:
    """Write ``root/predictions`` for every annotated frame of ``split`` with the submission's model
    (on ``device``: the worker's, ``cpu`` or ``cuda``); ``usage`` receives what the run cost, as it goes
    (``usage.cpu_seconds`` follows the child while it runs, so a worker's heartbeat can record it).

    Raises:
        SubmissionInvalid: every problem with the card, the weights or the run (limits included).
    """
    card, problems = read_card(root, policy)
    if problems or card is None:
        raise SubmissionInvalid(problems)
    out = root / "predictions"
    limits = ChildLimits(policy.memory_bytes, policy.seconds, policy.wall_seconds, os.getpid())
    job = {
        "card": to_mapping(card),
        "folder": str(root / MODEL_FOLDER),
        "gt": str(gt),
        "split": split,
        "out": str(out),
        "device": device,
        "limits": asdict(limits),
    }
    usage = usage if usage is not None else ModelUsage()
    before = _children_cpu()
    child = subprocess.Popen(
        [sys.executable, "-m", "mosxav_leaderboard.model_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        preexec_fn=functools.partial(_limit_before_exec, limits),  # noqa: PLW1509 (the limits must precede exec)
    )
    try:
        child.stdin.write((json.dumps(job) + "\n").encode())
        child.stdin.close()
    except BrokenPipeError:  # it died before reading its job: its exit status says why
        pass
    try:
        return _await_child(child, policy, split, out, usage)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        usage.cpu_seconds = max(usage.cpu_seconds, _children_cpu() - before)  # all of it, once reaped


def _limit_before_exec(limits: ChildLimits) -> None:
    """Between fork and exec, in the child: the death signal, then the limits, so they hold from the
    interpreter's first instruction (its imports of torch included); and none of it if the worker died
    before the death signal was asked for."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != limits.parent:
        os._exit(1)
    cpu = max(1, math.ceil(limits.cpu_seconds))
    for kind, soft, hard in (
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_CPU, cpu, cpu + CPU_HARD_MARGIN),
    ):
        with contextlib.suppress(ValueError, OSError):  # a hard limit lower than ours already holds
            resource.setrlimit(kind, (soft, hard))


def _cpu_seconds(pid: int) -> float:
    """The CPU seconds process ``pid`` has used (``/proc/<pid>/stat``); 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _await_child(child: subprocess.Popen, policy: ModelPolicy, split: str, out: Path, usage: ModelUsage) -> Path:
    """The child's outcome message (or its death, or silence past the wall-clock bound); the CPU it has
    used is kept in ``usage`` while it runs, and ``usage.ran`` once it says its model runs (a card or
    weights refused before that cost the team no daily slot, as a refusal at the door)."""
    lines: list[list[Any]] = []

    def read() -> None:
        for line in child.stdout:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if message == ["loaded"]:
                    usage.ran = True  # the card and weights passed: the model runs, and the job counts
                else:
                    lines.append(message)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + policy.wall_seconds + WALL_GRACE_SECONDS
    while reader.is_alive():
        reader.join(0.5)
        usage.cpu_seconds = max(usage.cpu_seconds, _cpu_seconds(child.pid))
        starved = _run_queue_seconds(child.pid)
        if reader.is_alive() and time.monotonic() - starved > deadline:  # the backstop: the child ends itself
            child.kill()
            took = f"took longer than this server's wall-clock bound of {policy.wall_seconds:g} s"
            raise SubmissionInvalid([Problem(MODEL_FOLDER, f"predicting the {split} split {took}")])
    code = child.wait()
    outcome = lines[-1] if lines else None
    if outcome is None:
        raise SubmissionInvalid([Problem(MODEL_FOLDER, _death(code, policy, split))])
    if outcome[0] != "ok":
        raise SubmissionInvalid([Problem(outcome[1], outcome[2])])
    return out


def _run_queue_seconds(pid: int) -> float:
    """Seconds process ``pid`` has waited runnable for a CPU (``/proc/<pid>/schedstat``; 0 unknown)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _death(code: int, policy: ModelPolicy, split: str) -> str:
    """Why a child ended without a word, from how it ended."""
    if code == -signal.SIGXCPU:  # over the soft limit before its handler was installed (during imports)
        return f"predicting the {split} split used this server's CPU time limit of {policy.seconds:g} s"
    memory = f"{policy.memory_bytes / 1024**3:.3g} GiB"
    if code == -signal.SIGKILL:
        return (
            f"the model's process was killed while predicting the {split} split: its CPU time limit of "
            f"{policy.seconds:g} s (past the grace the kernel gives), or the machine's memory"
        )
    return (
        f"the model's process died while predicting (exit {code}): it ran out of this server's memory "
        f"limit of {memory} (an import or an allocation failed under it), or crashed"
    )


@dataclass(frozen=True)
class ChildLimits:
    """What the model's process is held to, from its first instruction."""

    memory_bytes: int
    cpu_seconds: float
    wall_seconds: float
    parent: int  # the worker's pid: the child ends when it is gone


__all__ = ["POLICY_STATE", "ModelPolicy", "ModelUsage", "missing_frames", "predict_submission", "read_card"]
