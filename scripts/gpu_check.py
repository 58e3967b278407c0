"""One short check of ``configs/paper.yaml`` on a CUDA machine (run by ``scripts/gpu_check.sh``).

1. Every trained method of the paper config trains ``--steps`` steps at the paper's resolution, width,
   batch and method options, with bfloat16 autocast and ``torch.compile`` as the config asks, on a small
   synthetic MOSXAV generated at that resolution; then predicts two test frames. Compiling costs 40-115 s
   a method, about two thirds of the whole check when the methods ran one after another (docs/gpu.md), so
   each method runs in a process of its own: all compile and take their first ``--warm-steps`` steps at
   once (compilation is CPU work, the GPU machines have 16 cores), then, when every one is warm, they
   take turns on the GPU for the measured steps, keeping what they compiled in memory. Printed per
   method: the warm-up's seconds (compilation, under the others' load), frames/s of the measured steps,
   the batch assembly's milliseconds and share of a step, peak GPU memory, the last loss. Any NaN/inf
   loss, NaN prediction or error fails the check.
2. A two-step DDP run of the harness (``torchrun`` on every visible GPU, NCCL) for two methods, in the
   background while the methods compile.

Usage: ``python scripts/gpu_check.py [--steps 150] [--methods ...] [--jobs N] [--out DIR]``; exits
non-zero on any failure. ``--device cpu --config SMALL.yaml`` rehearses the wiring on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from mosxav import MOSXAV
from mosxav.data.synth import SynthConfig, generate_dataset
from mosxav.harness.cells import Cell
from mosxav.harness.config import RunConfig, load_config
from mosxav.harness.plan import method_options
from mosxav.harness.report import markdown_table
from mosxav.training.batches import FrameTensors
from mosxav.training.protocol import get_method
from mosxav.training.trainer import Trainer, mean_dice

PAPER = Path(__file__).resolve().parent.parent / "configs" / "paper.yaml"
WARM_STEPS = 3  # step 0 compiles; step 1 recompiles with the step counter dynamic; step 2 runs warm
READY = "GPU_CHECK_READY"  # the lines a worker process writes to the parent on its stdout
ROW = "GPU_CHECK_ROW"


@dataclasses.dataclass
class MethodRun:
    """One method's trainer, prepared and then warmed up in the process that measures it."""

    name: str
    trainer: Trainer
    val: FrameTensors
    device: torch.device
    warm_steps: int = 0
    warm_up_s: float = math.nan
    first_step_s: float = math.nan


def prepare_method(name: str, config: RunConfig, root: Path, steps: int, work: Path, device: str) -> MethodRun:
    """The method built from the config's options with a trainer for ``steps`` steps on ``root``."""
    train = dataclasses.replace(
        config.effective_train, iterations=steps, val_every=steps, checkpoint_every=steps, log_every=1
    )
    size = config.effective_size()
    options = method_options(dataclasses.replace(config, train=train), Cell(name, 0.25, 0.0, 0))
    torch.manual_seed(0)
    method = get_method(name)(options, 6)
    items = MOSXAV(root, "train", annotated_only=True)
    half = len(items) // 2
    labeled = FrameTensors(items, range(half), size, True)
    unlabeled = FrameTensors(items, range(half, len(items)), size, False)
    val = FrameTensors(MOSXAV(root, "val", annotated_only=True), range(2), size, True)
    trainer = Trainer(method, labeled, unlabeled, val, train, work / name, device=torch.device(device))
    return MethodRun(name, trainer, val, torch.device(device))


def warm_up(run: MethodRun, warm_steps: int = WARM_STEPS) -> None:
    """The first ``warm_steps`` training steps and one validation: what compiles, compiles here."""
    start = time.perf_counter()
    run.trainer.fit(stop_after=warm_steps)
    mean_dice(run.trainer.method, run.val, run.device, channels_last=run.trainer.config.channels_last)
    _synchronize(run.device)
    run.warm_steps = warm_steps
    run.warm_up_s = time.perf_counter() - start
    if warm_steps:
        run.first_step_s = run.trainer.config.batch_size / _records(run)[0]["frames_per_s"]
    if run.device.type == "cuda":
        torch.cuda.empty_cache()  # leave the GPU's memory to the process measuring now


def measure(run: MethodRun) -> dict:
    """The remaining steps, timed, then two predicted frames; returns the figures, raises on NaN.
    ``batch_ms`` times the batch assembly alone (collate, crop, augmentation, copy to the device): on a
    GPU it is what a fast step still waits for on the CPU."""
    trainer, device = run.trainer, run.device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    _synchronize(device)
    start = time.perf_counter()
    method = trainer.fit()
    _synchronize(device)
    seconds = time.perf_counter() - start
    batch_ms = _batch_assembly_ms(trainer, device)
    records = _records(run)
    losses = [r["loss"] for r in records]
    if not losses or not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f"{run.name}: non-finite loss in {losses[-5:]}")
    rates = [r["frames_per_s"] for r in records if r["step"] > run.warm_steps]
    frames_per_s = sum(rates) / len(rates) if rates else math.nan
    with torch.no_grad():
        probs = method.predict(torch.stack([run.val[i]["image"] for i in range(2)]).to(device))
    if not torch.isfinite(probs).all():
        raise FloatingPointError(f"{run.name}: non-finite prediction")
    return {
        "method": run.name,
        "steps": trainer.config.iterations,
        "warm_up_s": round(run.warm_up_s, 1),
        "first_step_s": round(run.first_step_s, 1),  # allocation, autotuning and compilation
        "seconds": round(seconds, 1),
        "frames_per_s": round(frames_per_s, 1),
        "batch_ms": round(batch_ms, 1),
        "batch_share": round(batch_ms / 1000 / (trainer.config.batch_size / frames_per_s), 2),
        "peak_GiB": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if cuda else math.nan,
        "last_loss": round(losses[-1], 4),
    }


def check_method(
    name: str,
    config: RunConfig,
    root: Path,
    steps: int,
    work: Path,
    device: str = "cuda",
    warm_steps: int = WARM_STEPS,
) -> dict:
    """One method in this process: prepared, warmed up, measured (the tests run it on the CPU)."""
    run = prepare_method(name, config, root, steps, work, device)
    warm_up(run, warm_steps)
    return measure(run)


def _records(run: MethodRun) -> list[dict]:
    """The training-step records of the trainer's metrics.jsonl (validation records left out)."""
    lines = (run.trainer.out_dir / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if "loss" in record]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch_assembly_ms(trainer: Trainer, device: torch.device, repeats: int = 20) -> float:
    """Mean milliseconds of ``Trainer._batches`` alone (frames already prepared and cached by the run)."""
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        trainer._batches()
    _synchronize(device)
    return (time.perf_counter() - start) / repeats * 1000


def results_table(rows: list[dict]) -> str:
    """The per-method figures as the Markdown table docs/gpu.md keeps."""
    headers = [
        "method",
        "steps",
        "warm-up s (first step)",
        "frames/s after",
        "batch ms (share of a step)",
        "peak GiB",
        "last loss",
    ]
    cells = [
        [
            r["method"],
            r["steps"],
            f"{r['warm_up_s']} ({r['first_step_s']})",
            r["frames_per_s"],
            f"{r['batch_ms']} ({r['batch_share']:.0%})",
            r["peak_GiB"],
            r["last_loss"],
        ]
        for r in rows
    ]
    return markdown_table(headers, cells)


class Worker:
    """A process that checks one method (``--worker``): it reports READY once warm, waits for the
    parent's go, then reports its ROW. Its stdout is read on a thread, so waits can time out."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        self._stderr = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # a session of its own: stop() ends its compile workers too
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, tag: str, deadline: float) -> dict:
        """The JSON of the next ``tag`` line; raises when the process ends or the deadline passes first."""
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{self.name}: no {tag} in time") from None
            if line is None:
                self.process.wait()
                raise RuntimeError(f"{self.name}: exited {self.process.returncode}:\n{self.stderr_tail()}")
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1 :])

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def stderr_tail(self, chars: int = 3000) -> str:
        self._stderr.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def stop(self) -> None:
        """Kills the worker and whatever it started, if still going (a kill after its ROW is harmless)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._stderr.close()


def check_methods(
    names: list[str],
    config_path: Path,
    root: Path,
    steps: int,
    work: Path,
    device: str = "cuda",
    jobs: int | None = None,
    warm_steps: int = WARM_STEPS,
    warm_timeout_s: float = 480.0,
    measure_timeout_s: float = 300.0,
    before_measuring: Callable[[], None] | None = None,
) -> tuple[list[dict], list[str]]:
    """Every method in a worker process, ``jobs`` at a time (default: all): the batch warms up at once,
    then its workers take turns for the measured steps, one alone on the device at a time;
    ``before_measuring`` runs once, before the first measured steps (the DDP run ends there). Returns
    the rows and the failures (one line each: the method and why)."""
    jobs = max(1, jobs or len(names))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    failures: list[str] = []
    for first in range(0, len(names), jobs):
        batch = names[first : first + jobs]
        env = dict(os.environ, TORCHINDUCTOR_COMPILE_THREADS=str(compile_threads(len(batch))))
        workers = []
        for name in batch:
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                name,
                "--config",
                str(config_path),
                "--root",
                str(root),
                "--work",
                str(work),
                "--steps",
                str(steps),
                "--warm-steps",
                str(warm_steps),
                "--device",
                device,
            ]
            workers.append(Worker(name, command, work / f"{name}.log", env))
        try:
            warm_start = time.monotonic()
            warm_deadline = warm_start + warm_timeout_s
            ready = []
            for worker in workers:
                try:
                    worker.expect(READY, warm_deadline)
                except (RuntimeError, TimeoutError) as exc:
                    failures.append(f"{worker.name}: warm-up: {exc}")
                    print(f"FAILED {failures[-1]}", flush=True)
                    worker.stop()
                    continue
                ready.append(worker)
            warm_s = time.monotonic() - warm_start
            print(f"{len(ready)} of {len(batch)} methods warm after {warm_s:.0f} s", flush=True)
            if before_measuring is not None:
                before_measuring()
                before_measuring = None
            for worker in ready:
                try:
                    worker.go()
                    row = worker.expect(ROW, time.monotonic() + measure_timeout_s)
                except (OSError, RuntimeError, TimeoutError) as exc:  # OSError: it died after READY
                    failures.append(f"{worker.name}: {exc}")
                    print(f"FAILED {failures[-1]}", flush=True)
                    continue
                finally:
                    worker.stop()
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for worker in workers:
                worker.stop()
    return rows, failures


def compile_threads(processes: int, cores: int | None = None) -> int:
    """Inductor's compile workers per process when ``processes`` compile at once: twice the cores shared
    out (a compiling process is often in single-threaded tracing, so the cores would idle at one each),
    never more than the cores; inductor's own default is every core in every process."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, math.ceil(2 * cores / processes)))


def worker_main(args: argparse.Namespace) -> int:
    """The ``--worker`` process: prepare and warm up one method, say READY, wait, measure, say ROW."""
    config = load_config(args.config)
    run = prepare_method(args.worker, config, args.root, args.steps, args.work, args.device)
    warm_up(run, args.warm_steps)
    print(f"{READY} {json.dumps({'warm_up_s': run.warm_up_s})}", flush=True)
    if not sys.stdin.readline():  # the parent is gone: nothing is waiting for the figures
        return 1
    print(f"{ROW} {json.dumps(measure(run))}", flush=True)
    return 0


class DDPRun:
    """Two DDP steps of the harness on every visible GPU (NCCL; gloo on a CPU), run in the background
    while the methods compile (nothing is timed then), its output into ``work/ddp.log``; ``end()`` waits
    for it, once: before the first measured steps."""

    def __init__(self, root: Path, work: Path, gpus: int, size: int = 512, timeout_s: float = 300.0) -> None:
        self.gpus = gpus
        self.log = work / "ddp.log"
        self.timeout_s = timeout_s
        self.line: str | None = None  # what the check prints of it, once it has ended
        self.failure: str | None = None
        run_config = {
            "dataset": {"root": str(root)},
            "size": size,
            "methods": ["supervised", "diffproto"],
            "labeled_fractions": [0.5],
            "leaderboard": False,
            "overlays": 1,
            "model": {"width": 32, "depth": 4},
            "train": {
                "iterations": 2,
                "val_every": 2,
                "checkpoint_every": 2,
                "log_every": 1,
                "amp": True,
                "optimizer": "sgd",
                "lr": 0.01,
            },
            "method_options": {"diffproto": {"denoiser_width": 32, "sample_steps": 2}},
        }
        path = work / "ddp.yaml"
        path.write_text(yaml.safe_dump(run_config))
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={gpus}",
            "-m",
            "mosxav_leaderboard.command_line",
            "run",
            "--config",
            str(path),
            "--out",
            str(work / "ddp"),
        ]
        with open(self.log, "w", encoding="utf-8") as log:
            # a session of its own: torchrun's workers go with it when it is stopped
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def end(self) -> None:
        """Waits for the run (killed after ``timeout_s``) and prints its output's tail; a failure is kept
        in ``failure`` with the tail, to be reported beside the methods' rows."""
        if self.line is not None:
            return
        try:
            self.process.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
        tail = self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
        if self.process.returncode == 0:
            print(tail[-1500:], flush=True)
            self.line = f"two DDP steps on {self.gpus} GPU(s): ok"
        else:
            self.failure = f"DDP: run failed (exit {self.process.returncode}):\n{tail}"
            self.line = f"two DDP steps on {self.gpus} GPU(s): FAILED"

    def stop(self) -> None:
        """Kills the run and its workers if it is still going."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per method, warm-up included")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every trained method of the config")
    parser.add_argument("--jobs", type=int, default=None, help="methods warming up at once (default: all)")
    parser.add_argument("--warm-steps", type=int, default=WARM_STEPS, help="steps before the measured ones")
    parser.add_argument("--config", type=Path, default=PAPER, help="default: configs/paper.yaml")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a rehearsal, no DDP")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--ddp-only", action="store_true", help="only the two-step DDP run of the harness")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one method, for check_methods
    parser.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps <= args.warm_steps:
        parser.error(f"--steps {args.steps} leaves no step to measure after --warm-steps {args.warm_steps}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("no CUDA device: this check is for a GPU machine (--device cpu rehearses it)", file=sys.stderr)
        return 2
    started = time.monotonic()
    config = load_config(args.config)
    names = [] if args.ddp_only else args.methods or [m for m in config.methods if get_method(m).needs_training]
    gpus = torch.cuda.device_count() if cuda else 0
    card = f"{gpus} x {torch.cuda.get_device_name(0)}" if cuda else "CPU"
    print(
        f"torch {torch.__version__}, {card}; {args.config.name}: {config.effective_size()} px, width "
        f"{config.model.width}, batch {config.train.batch_size}+{config.train.unlabeled_batch_size}, "
        f"amp={config.train.amp}, compile={config.train.compile}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    print(f"work folder (synthetic data, each method's metrics.jsonl and log): {work}", flush=True)
    root = generate_dataset(
        work / "synth", SynthConfig(sequences=4, frames=11, size=config.effective_size(), seed=0, test_sequences=1)
    )
    ddp = DDPRun(root, work, gpus) if cuda else None
    before_measuring = ddp.end if ddp is not None else None
    try:
        rows, failures = check_methods(
            names, args.config, root, args.steps, work, args.device, args.jobs, args.warm_steps, before_measuring
        )
        if ddp is not None:
            ddp.end()  # --ddp-only (no methods) waits for it here
    finally:
        if ddp is not None:
            ddp.stop()
    if ddp is not None and ddp.failure:
        failures.append(ddp.failure)
    ddp_line = ddp.line if ddp is not None else "DDP: not run on a CPU rehearsal"
    total_s = time.monotonic() - started
    timing = f"wall time: {total_s:.0f} s for {len(names)} methods and the DDP run"
    table = results_table(rows)
    print(f"{table}{ddp_line}\n{timing}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        summary = {"rows": rows, "ddp": ddp_line, "failures": failures, "total_s": total_s}
        (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
        (args.out / "gpu_check.md").write_text(f"{table}\n{ddp_line}\n{timing}\n")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(tempfile.gettempdir()) / "mosxav_inductor"))
    sys.exit(main())
