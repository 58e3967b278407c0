"""MOSXAV-Bench's bottom layer: data, evaluation, training and the experiment harness.

Layers, each importing only those before it: ``mosxav.data`` (layout, files, dataset, splits,
download, synthetic generator), ``mosxav.evaluation`` (metrics, video J&F, folder scoring,
uncertainty), ``mosxav.training`` (method protocol and registry, trainer, U-Net, losses, label
noise, DDP), ``mosxav.harness`` (run configs, the run matrix, the report). Nothing here imports the
packages above (``mosxav_baselines``, ``mosxav_diffproto``, ``mosxav_leaderboard``).

The names below are the public API; they load on first use so that ``import mosxav`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mosxav.constants import CLASS_COLOURS, CLASS_NAMES, NUM_CLASSES
from mosxav.errors import DataError, Problem

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "MOSXAV": "mosxav.data.dataset",
    "MosxavSequence": "mosxav.data.dataset",
    "ToTensors": "mosxav.data.transforms",
    "load_dataset": "mosxav.data.hf",
    "make_partition": "mosxav.data.splits",
    "Partition": "mosxav.data.splits",
    "generate_dataset": "mosxav.data.synth",
    "SynthConfig": "mosxav.data.synth",
    "evaluate_semantic": "mosxav.evaluation.folder",
    "evaluate_vos": "mosxav.evaluation.vos",
    "Method": "mosxav.training.protocol",
    "MethodOptions": "mosxav.training.protocol",
    "get_method": "mosxav.training.protocol",
    "available_methods": "mosxav.training.protocol",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mosxav' has no attribute {name!r}")


def toolkit_version() -> str:
    """The installed distribution's version (the source tree's when run uninstalled)."""
    try:
        return version("mosxav-bench")
    except PackageNotFoundError:
        return __version__


__all__ = [
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "NUM_CLASSES",
    "DataError",
    "Problem",
    "__version__",
    "toolkit_version",
    *_LAZY,
]
