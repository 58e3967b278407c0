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
import json
import math
import multiprocessing
import os
import resource
import signal
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mosxav.data.dataset import MOSXAV
from mosxav.data.files import read_untrusted_yaml
from mosxav.errors import DataError, Problem
from mosxav.harness.model_card import CARD_FILE, MODEL_FOLDER, ModelCard, build_method, load_weights, predict_with_card
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
        return self.seconds * self.wall_factor

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
    (on ``device``: the worker's, ``cpu`` or ``cuda``); ``usage`` receives what the run cost.

    Raises:
        SubmissionInvalid: every problem with the card, the weights or the run (limits included).
    """
    card, problems = read_card(root, policy)
    if problems or card is None:
        raise SubmissionInvalid(problems)
    out = root / "predictions"
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    limits = ChildLimits(policy.memory_bytes, policy.seconds, policy.wall_seconds, os.getpid())
    args = (card, str(root / MODEL_FOLDER), str(gt), split, str(out), limits, device)
    child = context.Process(target=_predict_in_child, args=(*args, sender), daemon=True)
    usage = usage if usage is not None else ModelUsage()
    before = _children_cpu()
    child.start()
    usage.ran = True
    sender.close()
    try:
        return _await_child(child, receiver, policy, split, out)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        usage.cpu_seconds = max(0.0, _children_cpu() - before)


def _await_child(child: Any, receiver: Any, policy: ModelPolicy, split: str, out: Path) -> Path:
    """The child's one message (or its death, or silence past the wall-clock bound) as the outcome."""
    # The child ends itself at its limits; this is the backstop for one that cannot (a dead child's pipe
    # reads as EOF at once).
    if not receiver.poll(policy.wall_seconds + WALL_GRACE_SECONDS):
        child.kill()
        child.join()
        took = f"took longer than this server's wall-clock bound of {policy.wall_seconds:g} s"
        raise SubmissionInvalid([Problem(MODEL_FOLDER, f"predicting the {split} split {took}")])
    try:
        outcome = receiver.recv()
    except EOFError:  # the child died without a word (killed by the kernel, or crashed)
        outcome = None
    child.join(30)  # it exits right after its message
    if child.is_alive():
        child.kill()
        child.join()
    if outcome is None:
        memory = f"{policy.memory_bytes / 1024**3:.3g} GiB"
        died = f"the model's process died while predicting (exit {child.exitcode}): over its {memory} or a crash"
        raise SubmissionInvalid([Problem(MODEL_FOLDER, died)])
    if outcome[0] != "ok":
        raise SubmissionInvalid([Problem(outcome[1], outcome[2])])
    return out


@dataclass(frozen=True)
class ChildLimits:
    """What the model's process enforces on itself."""

    memory_bytes: int
    cpu_seconds: float
    wall_seconds: float
    parent: int  # the worker's pid: the child ends when it is gone


def _die_with(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), and end now if it already has."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the worker died before the request was made
        os._exit(1)


def _limit_self(limits: ChildLimits, sender: Any, split: str) -> None:
    """CPU time and memory as resource limits, the wall clock as a watchdog thread: each ends the child
    with its message to the worker, with or without a worker to enforce it."""
    cpu = max(1, math.ceil(limits.cpu_seconds))
    for kind, value in ((resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_CPU, cpu)):
        soft = value
        hard = value if kind == resource.RLIMIT_AS else value + CPU_HARD_MARGIN
        try:
            resource.setrlimit(kind, (soft, hard))
        except (ValueError, OSError):  # a hard limit lower than ours already holds
            pass

    def over(message: str) -> None:
        with contextlib.suppress(Exception):
            sender.send(("problem", MODEL_FOLDER, f"predicting the {split} split {message}"))
        os._exit(1)

    signal.signal(signal.SIGXCPU, lambda *_: over(f"used this server's CPU time limit of {limits.cpu_seconds:g} s"))
    watchdog = threading.Timer(
        limits.wall_seconds, over, (f"took longer than this server's wall-clock bound of {limits.wall_seconds:g} s",)
    )
    watchdog.daemon = True
    watchdog.start()


def _predict_in_child(
    card: ModelCard,
    folder: str,
    gt: str,
    split: str,
    out: str,
    limits: ChildLimits,
    device: str,
    sender: Any,
) -> None:
    """The child's work: limits first, then build, load and predict; one message back (ok or a problem)."""
    _die_with(limits.parent)
    _limit_self(limits, sender, split)
    import torch

    torch.set_num_threads(1)  # the CPU-time limit is one thread's: a model's cost does not depend on the cores
    limit = f"{limits.memory_bytes / 1024**3:.3g} GiB"

    def shown(text: object) -> str:  # the team reads paths inside its submission, never the server's
        return str(text).replace(folder, MODEL_FOLDER).replace(gt, "<ground truth>")

    try:
        method = build_method(card, f"{MODEL_FOLDER}/{CARD_FILE}")
        load_weights(method, Path(folder) / card.weights)
        items = MOSXAV(gt, split, annotated_only=True)
        predict_with_card(card, method, items, Path(out), torch.device(device))
    except DataError as exc:
        sender.send(("problem", shown(exc.path), shown(exc.problem)))
        return
    except MemoryError:
        sender.send(("problem", MODEL_FOLDER, f"the model needs more than this server's {limit}"))
        return
    except Exception as exc:  # the method's own code refusing what the card asks of it: the team's to read
        text = str(exc).splitlines()[0][:300] if str(exc) else ""
        if "alloc" in text.lower() or "out of memory" in text.lower():
            text = f"the model needs more than this server's {limit} ({text})"
        else:
            text = f"the model failed while predicting: {exc.__class__.__name__}: {text}"
        sender.send(("problem", MODEL_FOLDER, shown(text)))
        return
    sender.send(("ok",))


__all__ = ["POLICY_STATE", "ModelPolicy", "ModelUsage", "missing_frames", "predict_submission", "read_card"]
