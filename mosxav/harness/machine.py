"""What a run's numbers may depend on beyond its code and config: the CPU, the vector instructions the
kernels dispatch to, the thread count and the library versions. Two machines can train the same seed
to different weights (docs/benchmarks.md, "Same seed, another machine"): every run folder and study
records these beside its results so a reader can tell which numbers came from where."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from mosxav.training.trainer import native_bf16


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, str | int | bool]:
    """CPU model, the ISA ATen dispatches to, the oneDNN version and the ISA cap it was given, threads,
    and the versions of torch, numpy and Python."""
    import numpy
    import torch

    onednn = re.search(r"MKL-DNN v([\d.]+)", torch.__config__.show())
    return {
        "machine": cpu_model(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "onednn": onednn.group(1) if onednn else "",
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "threads": torch.get_num_threads(),
        "cpu_bf16": native_bf16("cpu"),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
