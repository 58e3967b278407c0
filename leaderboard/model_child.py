"""The process that runs a team's model: ``python -m mosxav_leaderboard.model_child``.

Started by ``mosxav_leaderboard.model_runs`` with its limits already in force: the death signal, the
address-space and CPU-time limits are set between fork and exec (``preexec``), so they hold from the
new interpreter's first instruction, through the imports (torch takes seconds and hundreds of MB), and
whatever happens to the worker that started it. The job arrives as one JSON line on stdin; JSON lines
leave on stdout: ``["loaded"]`` once the card and weights are accepted and the model starts to run,
then the outcome, ``["ok"]`` or ``["problem", path, message]``. This module imports
nothing heavy before it has installed its own watchdog and CPU-limit handler.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: The folder of a model submission the team's paths are shown under.
MODEL_FOLDER = "model"


def _send(message: list[Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def not_starved_seconds(started: float) -> float:
    """Wall-clock seconds since ``started`` that this process was not waiting for a CPU: the part of its
    wall clock its own code is answerable for (``/proc/self/schedstat``: the time spent runnable on a
    run queue; without it, the whole wall clock)."""
    elapsed = time.monotonic() - started
    try:
        waited = int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        waited = 0.0
    return elapsed - waited


def watch(wall_seconds: float, split: str, started: float) -> None:
    """End this process, with its message, once it has spent ``wall_seconds`` of wall clock neither
    running nor waiting for a CPU (stuck, or waiting on nothing): a child starved by other load is
    judged by its CPU limit alone."""

    def loop() -> None:
        while True:
            left = wall_seconds - not_starved_seconds(started)
            if left <= 0:
                over(split, f"took longer than this server's wall-clock bound of {wall_seconds:g} s")
            time.sleep(min(1.0, max(0.05, left)))

    threading.Thread(target=loop, name="wall-clock", daemon=True).start()


def over(split: str, what: str) -> None:
    try:
        _send(["problem", MODEL_FOLDER, f"predicting the {split} split {what}"])
    finally:
        os._exit(1)


def main() -> None:
    started = time.monotonic()
    job = json.loads(sys.stdin.readline())
    split, limits = job["split"], job["limits"]
    cpu = f"used this server's CPU time limit of {limits['cpu_seconds']:g} s"
    signal.signal(signal.SIGXCPU, lambda *_: over(split, cpu))
    watch(limits["wall_seconds"], split, started)
    run(job)


def run(job: dict[str, Any]) -> None:
    """Build, load and predict; one message back (ok or a problem the team can read)."""
    import torch

    from mosxav.data.dataset import MOSXAV
    from mosxav.errors import DataError
    from mosxav.harness.model_card import CARD_FILE, ModelCard, build_method, load_weights, predict_with_card

    torch.set_num_threads(1)  # the CPU-time limit is one thread's: a model's cost does not depend on the cores
    folder, gt, split = job["folder"], job["gt"], job["split"]
    limit = f"{job['limits']['memory_bytes'] / 1024**3:.3g} GiB"

    def shown(text: object) -> str:  # the team reads paths inside its submission, never the server's
        return str(text).replace(folder, MODEL_FOLDER).replace(gt, "<ground truth>")

    try:
        card = ModelCard.read(Path(f"{MODEL_FOLDER}/{CARD_FILE}"), job["card"])
        method = build_method(card, f"{MODEL_FOLDER}/{CARD_FILE}")
        load_weights(method, Path(folder) / card.weights)
        _send(["loaded"])  # from here the model runs: its job counts against the team's daily limit
        items = MOSXAV(gt, split, annotated_only=True)
        predict_with_card(card, method, items, Path(job["out"]), torch.device(job["device"]))
    except DataError as exc:
        _send(["problem", shown(exc.path), shown(exc.problem)])
        return
    except MemoryError:
        _send(["problem", MODEL_FOLDER, f"the model ran out of this server's memory limit of {limit}"])
        return
    except Exception as exc:  # the method's own code refusing what the card asks of it: the team's to read
        text = str(exc).splitlines()[0][:300] if str(exc) else ""
        if out_of_memory(text):
            text = f"the model ran out of this server's memory limit of {limit} ({text})"
        else:
            text = f"the model failed while predicting: {exc.__class__.__name__}: {text}"
        _send(["problem", MODEL_FOLDER, shown(text)])
        return
    _send(["ok"])


def out_of_memory(text: str) -> bool:
    """Whether an error's text is an allocation that failed under the memory limit (PyTorch's, or
    oneDNN's "could not create a primitive" when its workspace cannot be allocated)."""
    lowered = text.lower()
    return any(mark in lowered for mark in ("alloc", "out of memory", "could not create a primitive"))


if __name__ == "__main__":
    main()
